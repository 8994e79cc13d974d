// 5. Fleet: the rollouts list, a new rollout (several targets and regions, a strategy and a mode), and a
// rollout's page: a target x region grid coloured by item status, counts, summary, and its actions.

import { ago, badge, button, errorBox, field, h, link, replace, row, section, setProblem, sleep, table, title } from './dom.js';
import { get, latestOnly, newKey, post, query } from './api.js';
import { targetNames } from './deployments.js';

const RUNNING = new Set(['PENDING', 'IN_PROGRESS']);

const STATUSES = ['', 'PENDING', 'IN_PROGRESS', 'PLANNED', 'PAUSED', 'SUCCEEDED', 'FAILED', 'CANCELLED'];

// The rollouts list: GET /rollouts, newest first, filtered by status and stack name on the server.
export async function list(main, { signal }) {
  const status = h('select', {}, STATUSES.map((s) => h('option', { value: s }, s || 'Any status')));
  const stack = h('input', { type: 'search', spellcheck: 'false', placeholder: 'exact stack name' });
  const body = h('div');
  const more = button('Load more', () => load(false), { class: 'secondary', hidden: true });
  const filters = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter rollouts', novalidate: true },
    field('Status', status), field('Stack name', stack), h('button', { type: 'submit', class: 'secondary' }, 'Filter'));
  title(main, 'Fleet', h('div', { class: 'actions' }, link('#/rollouts/new', 'New rollout')), filters, body, more);
  let items = [];
  let token = null;
  const request = latestOnly(signal);
  async function load(fresh) {
    const current = request(); // first: even a load refused below gives up the one before it
    if (fresh) { // the next page of the list being replaced is no page of the new one
      token = null;
      more.hidden = true;
    }
    const name = stack.value.trim();
    setProblem(stack, !name || /^[a-zA-Z][-a-zA-Z0-9]{0,127}$/.test(name) ? '' : 'A stack name: letters, digits and hyphens, starting with a letter.');
    if (stack.getAttribute('aria-invalid')) return;
    try {
      const page = await get(`/rollouts${query({ status: status.value, stack_name: name, limit: 25, next_token: fresh ? null : token })}`, { signal: current });
      items = fresh ? page.items : items.concat(page.items);
      token = page.next_token;
      replace(body, table(`${items.length} rollout${items.length === 1 ? '' : 's'}${token ? ' (more to load)' : ''}`,
        ['Stack', 'Status', 'Mode', 'Items', 'Failed', 'Last change'],
        items.map((r) => row(link(`#/rollouts/${r.rollout_id}`, r.stack_name), badge(r.status), r.mode,
          String(r.item_count), `${r.failed} (tolerated ${r.failure_tolerance})`, ago(r.updated_at)))));
      more.hidden = !token;
    } catch (error) {
      if (error.name !== 'AbortError') replace(body, errorBox(error, 'The rollouts could not be listed'));
    }
  }
  status.addEventListener('change', () => load(true));
  filters.addEventListener('submit', (event) => { event.preventDefault(); load(true); });
  await load(true);
}

export async function create(main, { signal }) {
  const messages = h('div', { class: 'messages' });
  let targets;
  try {
    targets = [...(await targetNames()).values()];
  } catch (error) {
    title(main, 'New rollout', errorBox(error, 'The targets could not be listed'));
    return;
  }
  const stack = h('input', { type: 'text', spellcheck: 'false' });
  const template = h('textarea', { rows: 10, cols: 80, spellcheck: 'false' });
  // Items run in the order the targets were ticked: the first ones are the canaries.
  const ticked = [];
  const picks = targets.map((t) => {
    const box = h('input', { type: 'checkbox', value: t.target_id, id: `pick-${t.target_id}` });
    box.addEventListener('change', () => {
      const at = ticked.indexOf(t);
      if (box.checked && at < 0) ticked.push(t);
      if (!box.checked && at >= 0) ticked.splice(at, 1);
    });
    return [t, box];
  });
  const canary = h('input', { type: 'number', min: 0, max: 100, value: 1 });
  const concurrent = h('input', { type: 'text', value: '10' });
  const tolerance = h('input', { type: 'text', value: '0' });
  const order = h('select', {}, h('option', { value: 'waves' }, 'One wave per region'), h('option', { value: 'parallel' }, 'All regions at once'));
  const mode = h('select', {}, h('option', { value: 'apply' }, 'Apply'), h('option', { value: 'plan' }, 'Plan (review, then apply)'));
  const start = h('button', { type: 'submit' }, 'Start rollout');
  const form = h('form', { novalidate: true },
    field('Stack name', stack), field('Template body', template),
    h('fieldset', {}, h('legend', {}, 'Targets (all their regions), in the order you tick them: the first are the canaries'),
      picks.map(([t, box]) => h('div', { class: 'field inline' }, box, h('label', { for: box.id }, `${t.name} (${t.account_id}: ${t.regions.join(', ')})`)))),
    h('fieldset', {}, h('legend', {}, 'Strategy'),
      field('Canary items', canary, 'Run alone first; a failing canary pauses the rollout.'),
      field('At most at once', concurrent, 'A number or a percentage such as 25%.'),
      field('Failures tolerated', tolerance, 'A number or a percentage; past it nothing new starts.'),
      field('Region order', order)),
    field('Mode', mode), start, messages);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    messages.replaceChildren();
    setProblem(stack, /^[a-zA-Z][-a-zA-Z0-9]{0,127}$/.test(stack.value) ? '' : 'Letters, digits and hyphens, starting with a letter.');
    setProblem(template, template.value.trim() ? '' : 'Paste the template.');
    const chosen = ticked.map((t) => ({ target_id: t.target_id }));
    if (stack.getAttribute('aria-invalid') || template.getAttribute('aria-invalid')) return;
    if (!chosen.length) {
      messages.append(errorBox({ message: 'Pick at least one target.' }, 'No targets'));
      return;
    }
    const number = (v) => (/^\d+$/.test(v) ? Number(v) : v);
    const strategy = { canary: Number(canary.value), max_concurrent: number(concurrent.value.trim()), failure_tolerance: number(tolerance.value.trim()) };
    if (order.value === 'parallel') strategy.region_order = 'parallel';
    try {
      const { data } = await post('/rollouts', { stack_name: stack.value, template_body: template.value, targets: chosen, strategy, mode: mode.value }, { idempotencyKey: newKey(), signal });
      window.location.hash = `#/rollouts/${data.rollout_id}`;
    } catch (error) {
      if (error.name !== 'AbortError') messages.append(errorBox(error, 'The rollout was refused'));
    }
  });
  title(main, 'New rollout', form);
}

function grid(rollout, names) {
  const regions = [...new Set(rollout.items.map((i) => i.region))].sort();
  const byTarget = new Map();
  for (const item of rollout.items) {
    if (!byTarget.has(item.target_id)) byTarget.set(item.target_id, new Map());
    byTarget.get(item.target_id).set(item.region, item);
  }
  return h('table', { class: 'grid' },
    h('caption', {}, 'Items by target and region'),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Target'), regions.map((r) => h('th', { scope: 'col' }, r)))),
    h('tbody', {}, [...byTarget.entries()].map(([targetId, cells]) => h('tr', {},
      h('th', { scope: 'row' }, names.get(targetId) ? `${names.get(targetId).name} (${names.get(targetId).account_id})` : targetId),
      regions.map((region) => {
        const item = cells.get(region);
        if (!item) return h('td', {}, '—');
        const label = item.status === 'FAILED' && item.deployment_id ? link(`#/deployments/${item.deployment_id}`, 'FAILED') : item.status;
        return h('td', { class: `cell ${item.status}`, title: item.error ? item.error.message : '' }, label);
      })))));
}

export async function detail(main, { id, signal }) {
  const body = h('div');
  const actions = h('div');
  title(main, 'Rollout', body, actions);
  let names = new Map();
  try {
    names = await targetNames();
  } catch {
    // ids only
  }
  const act = (label, path) => button(label, async (event) => {
    event.currentTarget.disabled = true;
    try {
      await post(`/rollouts/${id}/${path}`, {}, { idempotencyKey: newKey() });
    } catch (error) {
      actions.append(errorBox(error, `${label} was refused`));
    }
  });
  for (;;) {
    let rollout;
    try {
      rollout = await get(`/rollouts/${id}${query({ limit: 1000 })}`, { signal });
    } catch (error) {
      if (error.name !== 'AbortError') replace(body, errorBox(error, 'The rollout could not be read'));
      return;
    }
    main.querySelector('h1').textContent = `Rollout ${rollout.stack_name}`;
    replace(body,
      section('Status',
        h('dl', { class: 'facts' },
          h('dt', {}, 'Status'), h('dd', {}, badge(rollout.status)),
          h('dt', {}, 'Mode'), h('dd', {}, rollout.mode),
          h('dt', {}, 'Counts'), h('dd', {}, Object.entries(rollout.counts).filter(([, n]) => n).map(([s, n]) => `${s}: ${n}`).join(', ')),
          h('dt', {}, 'Summary'), h('dd', {}, typeof rollout.summary === 'string' ? rollout.summary : JSON.stringify(rollout.summary))),
        rollout.error ? errorBox(rollout.error, 'The rollout stopped') : null),
      section('Grid', grid(rollout, names)));
    const buttons = [];
    if (RUNNING.has(rollout.status)) buttons.push(act('Pause', 'pause'));
    if (rollout.status === 'PAUSED') buttons.push(act('Resume', 'resume'));
    if (rollout.status === 'PLANNED') buttons.push(act('Apply', 'apply'));
    if (RUNNING.has(rollout.status) || rollout.status === 'PAUSED') buttons.push(act('Cancel rollout', 'cancel'));
    replace(actions, buttons.length ? section('Actions', h('div', { class: 'actions' }, buttons)) : null);
    await sleep(RUNNING.has(rollout.status) || rollout.status === 'PAUSED' ? 1000 : 5000, signal);
    if (signal.aborted) return;
  }
}
