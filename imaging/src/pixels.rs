//! The pixel buffer every stage hands on, and alpha compositing over white
//! (the one rule every decoder applies to transparency).

/// An 8-bit RGB pixel buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rgb {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
}

/// One RGBA pixel as RGB over a white background.
pub(crate) fn over_white(rgba: &[u8]) -> [u8; 3] {
    let a = u32::from(rgba[3]);
    let blend = |c: u8| ((u32::from(c) * a + 255 * (255 - a) + 127) / 255) as u8;
    [blend(rgba[0]), blend(rgba[1]), blend(rgba[2])]
}
