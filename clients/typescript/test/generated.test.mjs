// src/schema.ts is what openapi-typescript makes of the live API's document.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { render, schemaPath } from "../scripts/generate.mjs";

test("the committed types are generated from the API's current document", async () => {
  const expected = await render(process.env.ZIPFLEET_API_URL);
  const committed = await readFile(schemaPath, "utf8");
  assert.ok(committed === expected, "src/schema.ts is out of date: run `ZIPFLEET_API_URL=... npm run generate`");
});
