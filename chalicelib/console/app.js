// The console's entry point: hash routes -> views. Each view gets the <main> element and
// {id, signal}: the route's id and an AbortSignal that fires when the user leaves the page (it stops
// any polling).

import { button, h, replace } from './dom.js';
import { signOut, token } from './api.js';
import * as signin from './signin.js';
import * as targets from './targets.js';
import * as wizard from './wizard.js';
import * as deployments from './deployments.js';
import * as fleet from './fleet.js';

const ROUTES = [
  [/^#\/signin$/, signin.view, true],
  [/^#\/deployments$/, deployments.list],
  [/^#\/deployments\/(dep-[0-9a-f]{24})$/, deployments.detail],
  [/^#\/deploy$/, wizard.view],
  [/^#\/targets$/, targets.list],
  [/^#\/targets\/new$/, targets.create],
  [/^#\/targets\/(tgt-[0-9a-f]{24})$/, targets.detail],
  [/^#\/rollouts$/, fleet.list],
  [/^#\/rollouts\/new$/, fleet.create],
  [/^#\/rollouts\/(rol-[0-9a-f]{24})$/, fleet.detail],
];

const NAV = [
  ['#/deployments', 'Deployments'],
  ['#/deploy', 'New deployment'],
  ['#/targets', 'Accounts'],
  ['#/rollouts', 'Fleet'],
];

let leaving = null;

function renderNav(signedIn) {
  const nav = document.getElementById('nav');
  if (!signedIn) {
    replace(nav);
    return;
  }
  const here = window.location.hash;
  replace(
    nav,
    h('ul', {}, NAV.map(([href, label]) => h('li', {}, h('a', { href, 'aria-current': here.startsWith(href) && (here === href || here[href.length] === '/') ? 'page' : null }, label)))),
    button('Sign out', () => {
      signOut();
      window.location.hash = '#/signin';
    }),
  );
}

async function route() {
  if (leaving) leaving.abort();
  leaving = new AbortController();
  const main = document.getElementById('main');
  const hash = window.location.hash || '#/deployments';
  const match = ROUTES.map(([pattern, view, open]) => [hash.match(pattern), view, open]).find(([m]) => m);
  if (!match) {
    window.location.hash = '#/deployments';
    return;
  }
  const [captures, view, open] = match;
  if (!open && !token()) {
    window.location.hash = '#/signin';
    return;
  }
  renderNav(Boolean(token()) && !open);
  try {
    await view(main, { id: captures[1], signal: leaving.signal });
  } catch (error) {
    if (error.name !== 'AbortError') throw error;
  }
}

window.addEventListener('hashchange', route);
window.addEventListener('nexus:signed-out', () => {
  window.location.hash = '#/signin';
});
route();
