// 1. Sign in: the tenant's API token, checked against the API before it is kept (sessionStorage only).

import { errorBox, field, h, title } from './dom.js';
import { get, signIn, signOut } from './api.js';

export async function view(main) {
  signOut();
  const input = h('input', { type: 'password', name: 'token', autocomplete: 'off', required: true, spellcheck: 'false' });
  const problem = h('div', { class: 'messages' });
  const form = h(
    'form',
    { class: 'narrow', novalidate: true },
    field('API token', input, 'The bearer token of your tenant: make run prints one; on AWS, nexus tokens create makes one.'),
    h('button', { type: 'submit' }, 'Sign in'),
    problem,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    problem.replaceChildren();
    const value = input.value.trim();
    if (!value) {
      problem.append(errorBox({ code: 'MISSING_TOKEN', message: 'Enter the API token.', hint: 'Paste the token make run printed.' }, 'Not signed in'));
      input.focus();
      return;
    }
    try {
      await get('/targets?limit=1', { token: value });
    } catch (error) {
      const hint = error.status === 401
        ? 'Check the token: copy it again from the make run output (or from nexus tokens create), without spaces.'
        : error.hint;
      problem.append(errorBox({ code: error.code, message: error.message, hint }, 'The token was not accepted'));
      input.select();
      return;
    }
    signIn(value);
    window.location.hash = '#/deployments';
  });
  title(main, 'Sign in', h('p', {}, 'NexusAI Deployer deploys CloudFormation stacks into your AWS accounts.'), form);
}
