// zipfleet operator page: the sign-in form, the only thing shown without a token.
// The token is handed to the app, which keeps it in this tab's
// sessionStorage; the form never submits anywhere (the CSP forbids form
// posts) and the token never appears in a URL.

import { h } from '../dom.js';

export function loginView({ message, kind = 'error', onToken }) {
  const input = h('input', {
    id: 'token', name: 'token', type: 'password', required: true,
    autocomplete: 'current-password', spellcheck: 'false', placeholder: 'ZIPFLEET_API_TOKEN',
  });
  const form = h('form', {
    class: 'login-form', 'aria-label': 'Sign in',
    onsubmit: (event) => {
      event.preventDefault();
      const token = input.value.trim();
      if (token) onToken(token);
    },
  },
  h('label', { for: 'token' }, 'API token'),
  input,
  h('button', { type: 'submit' }, 'Sign in'));
  const node = h('section', { class: 'login', id: 'login' },
    h('h1', null, 'Sign in'),
    h('p', null, 'Enter the API token (the API\u2019s ZIPFLEET_API_TOKEN). It is kept in this browser tab only and sent to the API\u2019s own /v1 routes.'),
    message ? h('p', { class: `login-message login-${kind}`, role: kind === 'error' ? 'alert' : 'status' }, message) : null,
    form);
  queueMicrotask(() => input.focus());
  return node;
}
