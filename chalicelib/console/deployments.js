// 4. Managing Deployments: the list (filters, search, pages) and a deployment's page (status, outputs,
// parameters, tags, the events timeline, and its actions: update, plan/apply, cancel, continue
// rollback, delete).

import { ago, badge, button, code, errorBox, field, h, link, replace, row, section, setProblem, sleep, table, title } from './dom.js';
import { call, get, latestOnly, newKey, post, put, query } from './api.js';
import { parameterForm, tagEditor } from './params.js';

const STATUSES = ['', 'PENDING', 'IN_PROGRESS', 'ACTIVE', 'FAILED', 'PLANNED', 'DELETED'];
const RUNNING = new Set(['PENDING', 'IN_PROGRESS']);

export async function targetNames() {
  const names = new Map();
  let token = null;
  do {
    const page = await get(`/targets${query({ limit: 100, next_token: token })}`);
    for (const t of page.items) names.set(t.target_id, t);
    token = page.next_token;
  } while (token);
  return names;
}

export async function list(main, { signal }) {
  const status = h('select', {}, STATUSES.map((s) => h('option', { value: s }, s || 'Any status')));
  const target = h('select', {}, h('option', { value: '' }, 'Any target'));
  const search = h('input', { type: 'search', placeholder: 'stack name, region or account' });
  const body = h('div');
  const more = button('Load more', () => load(false), { class: 'secondary', hidden: true });
  title(
    main,
    'Deployments',
    h('div', { class: 'actions' }, link('#/deploy', 'New deployment')),
    h('div', { class: 'filters', role: 'search' }, field('Status', status), field('Target', target), field('Search', search)),
    body,
    more,
  );
  let targets = new Map();
  let items = [];
  let nextToken = null;

  function render() {
    const needle = search.value.trim().toLowerCase();
    const shown = items.filter((d) => !needle || [d.stack_name, d.region, d.account_id, (targets.get(d.target_id) || {}).name || '']
      .some((v) => String(v).toLowerCase().includes(needle)));
    replace(
      body,
      table(
        `${shown.length} deployment${shown.length === 1 ? '' : 's'}${nextToken ? ' (more to load)' : ''}`,
        ['Stack', 'Status', 'Target and account', 'Region', 'Stack status', 'Last change'],
        shown.map((d) => row(
          link(`#/deployments/${d.deployment_id}`, d.stack_name),
          badge(d.status),
          `${(targets.get(d.target_id) || {}).name || d.target_id} (${d.account_id})`,
          d.region,
          d.stack_status || '—',
          ago(d.updated_at),
        )),
      ),
    );
    more.hidden = !nextToken;
  }

  const request = latestOnly(signal);
  async function load(fresh) {
    const current = request();
    if (fresh) { // the next page of the list being replaced is no page of the new one
      nextToken = null;
      more.hidden = true;
    }
    try {
      const page = await get(`/deployments${query({ status: status.value, target_id: target.value, limit: 25, next_token: fresh ? null : nextToken })}`, { signal: current });
      items = fresh ? page.items : items.concat(page.items);
      nextToken = page.next_token;
      render();
    } catch (error) {
      if (error.name !== 'AbortError') replace(body, errorBox(error, 'The deployments could not be listed'));
    }
  }

  status.addEventListener('change', () => load(true));
  target.addEventListener('change', () => load(true));
  search.addEventListener('input', render);
  try {
    targets = await targetNames();
    for (const t of targets.values()) target.append(h('option', { value: t.target_id }, `${t.name} (${t.account_id})`));
  } catch (error) {
    replace(body, errorBox(error, 'The targets could not be listed'));
  }
  await load(true);
}

// -- a deployment's page ------------------------------------------------------------------------------

function facts(pairs) {
  return h('dl', { class: 'facts' }, pairs.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v ?? '—')]));
}

function masked(parameters, secret) {
  return Object.fromEntries(Object.entries(parameters || {}).map(([k, v]) => [k, secret.has(k) ? '****' : v]));
}

function keyValues(caption, values, emptyText) {
  const entries = Object.entries(values || {});
  if (!entries.length) return h('p', {}, emptyText);
  return table(caption, ['Name', 'Value'], entries.map(([k, v]) => row(k, v)));
}

export function changesTable(changes) {
  return table(
    'Planned changes',
    ['Action', 'Logical ID', 'Type', 'Replacement', 'IAM'],
    (changes || []).map((c) => row(
      c.action,
      c.logical_id,
      c.resource_type,
      c.replacement || '—',
      c.iam ? h('span', { class: 'iam' }, 'IAM change') : '',
    )),
  );
}

export function failureBox(deployment) {
  const e = deployment.error;
  if (!e) return null;
  return errorBox(e, `The ${deployment.operation.action.toLowerCase()} failed`);
}

// Events with a cursor: only those after the last one seen are fetched, never the whole history again.
export function eventsTimeline(deploymentId, signal) {
  const timeline = { origin: null };
  const tbody = h('tbody', { 'aria-live': 'polite' });
  const view = h(
    'table',
    { class: 'events' },
    h('caption', {}, 'Events, oldest first'),
    h('thead', {}, h('tr', {}, ['Time', 'Elapsed', 'Source', 'Resource', 'Status', 'Message'].map((n) => h('th', { scope: 'col' }, n)))),
    tbody,
  );
  let cursor = null;
  async function fetchNew() {
    let more = true;
    while (more) {
      const page = await get(`/deployments/${deploymentId}/events${query({ limit: 100, next_token: cursor })}`, { signal });
      for (const e of page.items) {
        // Elapsed since the current operation started (earlier operations' events show none).
        const elapsed = timeline.origin === null ? -1 : Math.round((Date.parse(e.timestamp) - timeline.origin) / 1000);
        tbody.append(row(ago(e.timestamp), elapsed >= 0 ? `${elapsed} s` : '', e.source, e.resource, badge(e.status), e.message));
      }
      if (page.cursor) cursor = page.cursor;
      more = Boolean(page.next_token);
    }
  }
  timeline.view = view;
  timeline.fetchNew = fetchNew;
  return timeline;
}

async function follow(deploymentId, render, signal) {
  // Until the operation ends: the record every second, the new events with it.
  for (;;) {
    const deployment = await get(`/deployments/${deploymentId}`, { signal });
    await render(deployment);
    if (!RUNNING.has(deployment.operation.status) || signal.aborted) return deployment;
    await sleep(1000, signal);
    if (signal.aborted) return deployment;
  }
}

export async function detail(main, { id, signal }) {
  const status = h('div');
  const actions = h('div');
  const timeline = eventsTimeline(id, signal);
  const events = section('Events', timeline.view);
  title(main, 'Deployment', status, actions, events);
  let targets = new Map();
  let secret = new Set();
  try {
    targets = await targetNames();
    const summary = await get(`/deployments/${id}/template-summary`, { signal });
    secret = new Set(summary.parameters.filter((p) => p.no_echo).map((p) => p.name));
  } catch {
    // the page still works with target ids; NoEcho values are masked by the API as well
  }

  async function render(d) {
    const heading = main.querySelector('h1');
    heading.textContent = `Deployment ${d.stack_name}`;
    document.title = `${d.stack_name} · NexusAI Deployer`;
    const target = targets.get(d.target_id);
    replace(
      status,
      section(
        'Status',
        facts([
          ['Status', badge(d.status)],
          ['Stack status', d.stack_status],
          ['Operation', `${d.operation.action} ${d.operation.mode === 'plan' ? '(plan) ' : ''}${d.operation.status}`],
          ['Target', target ? `${target.name} (${d.account_id})` : `${d.target_id} (${d.account_id})`],
          ['Region', d.region],
          ['Stack', d.stack_name],
          ['Last change', ago(d.updated_at)],
        ]),
        failureBox(d),
      ),
      section('Outputs', keyValues('Outputs', d.outputs, 'No outputs.')),
      section('Parameters', keyValues('Parameters (NoEcho values masked)', masked(d.parameters, secret), 'No parameters.')),
      section('Tags', keyValues('Tags', d.tags, 'No tags.')),
      d.plan ? section('Plan', changesTable(d.changes)) : null,
    );
    timeline.origin = Date.parse(d.operation.started_at);
    await timeline.fetchNew();
  }

  let deployment;
  try {
    deployment = await follow(id, render, signal);
  } catch (error) {
    if (error.name === 'AbortError') return;
    replace(status, errorBox(error, 'The deployment could not be read'));
    return;
  }
  renderActions(actions, deployment, () => detail(main, { id, signal }));
}

function renderActions(container, d, reload) {
  const messages = h('div', { class: 'messages' });
  const run = (label, request) => async (event) => {
    const btn = event.currentTarget;
    btn.disabled = true;
    messages.replaceChildren();
    try {
      await request();
      reload();
    } catch (error) {
      btn.disabled = false;
      messages.append(errorBox(error, `${label} was refused`));
    }
  };
  const buttons = [];
  if (d.status !== 'DELETED') {
    if (d.operation.status === 'PLANNED') {
      buttons.push(button('Apply plan', run('Apply', () => post(`/deployments/${d.deployment_id}/apply`, { config_hash: d.config_hash }, { idempotencyKey: newKey() }))));
    }
    if (RUNNING.has(d.operation.status)) {
      buttons.push(button('Cancel update', run('Cancel', () => post(`/deployments/${d.deployment_id}/cancel`, {}, { idempotencyKey: newKey() })), { class: 'secondary' }));
    }
    if (d.stack_status === 'UPDATE_ROLLBACK_FAILED') {
      buttons.push(button('Continue rollback', run('Continue rollback', () => post(`/deployments/${d.deployment_id}/continue-rollback`, {}, { idempotencyKey: newKey() }))));
    }
  }
  replace(
    container,
    buttons.length ? section('Actions', h('div', { class: 'actions' }, buttons), messages) : messages,
    d.status !== 'DELETED' && !RUNNING.has(d.operation.status) ? updatePanel(d, reload) : null,
    d.status !== 'DELETED' && !RUNNING.has(d.operation.status) ? deletePanel(d, reload) : null,
  );
}

function updatePanel(d, reload) {
  const holder = h('div');
  const messages = h('div', { class: 'messages' });
  const templateBox = h('textarea', { rows: 8, cols: 80, spellcheck: 'false' });
  let form = null;
  let tags = tagEditor(d.tags);

  async function describe(body) {
    const { data } = await post('/templates/describe', { template_body: body });
    return data;
  }

  async function showForm(summary, values) {
    form = parameterForm(summary, values, { keepSecrets: true });
    replace(holder, form.view, tags.view);
  }

  const loadCurrent = button('Edit parameters', async () => {
    messages.replaceChildren();
    try {
      const summary = await get(`/deployments/${d.deployment_id}/template-summary`);
      await showForm(summary, d.parameters);
    } catch (error) {
      messages.append(errorBox(error, 'The template could not be read'));
    }
  }, { class: 'secondary' });
  const loadNew = button('Use this template', async () => {
    messages.replaceChildren();
    setProblem(templateBox, '');
    try {
      const summary = await describe(templateBox.value);
      await showForm(summary, d.parameters);
    } catch (error) {
      setProblem(templateBox, error.message);
      messages.append(errorBox(error, 'The template was refused'));
    }
  }, { class: 'secondary' });

  async function submit(mode) {
    messages.replaceChildren();
    if (!form) {
      messages.append(errorBox({ message: 'Edit the parameters or give a new template first.' }, 'Nothing to update'));
      return;
    }
    const values = form.values();
    if (!values) return;
    const body = { parameters: values, tags: tags.values(), mode };
    if (templateBox.value.trim()) body.template_body = templateBox.value;
    try {
      await put(`/deployments/${d.deployment_id}`, body, { idempotencyKey: newKey() });
      reload();
    } catch (error) {
      messages.append(errorBox(error, 'The update was refused'));
    }
  }

  return section(
    'Update',
    h('p', {}, 'Change parameters or tags (the form is filled with the current values), or give a new template. Plan shows the changes first; apply them from this page.'),
    h('div', { class: 'actions' }, loadCurrent),
    h('details', {}, h('summary', {}, 'A new template'), field('New template (JSON or YAML)', templateBox), loadNew),
    holder,
    h('div', { class: 'actions' }, button('Plan update', () => submit('plan')), button('Update now', () => submit('deploy'), { class: 'secondary' })),
    messages,
  );
}

function deletePanel(d, reload) {
  const confirm = h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false' });
  const retain = h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false' });
  const messages = h('div', { class: 'messages' });
  const failedDelete = d.stack_status === 'DELETE_FAILED';
  const go = h('button', { type: 'button', class: 'danger' }, 'Delete');
  go.addEventListener('click', async () => {
    messages.replaceChildren();
    setProblem(confirm, '');
    if (confirm.value !== d.stack_name) {
      setProblem(confirm, `Type ${d.stack_name} exactly to confirm.`);
      confirm.focus();
      return;
    }
    const keep = retain.value.split(',').map((s) => s.trim()).filter(Boolean);
    try {
      await call('DELETE', `/deployments/${d.deployment_id}${query({ retain: keep.join(',') })}`, undefined, { idempotencyKey: newKey() });
      reload();
    } catch (error) {
      messages.append(errorBox(error, 'The delete was refused'));
    }
  });
  return section(
    'Delete',
    h('p', {}, 'Deletes the stack and everything it created in the target account.'),
    field(`Type the stack name (${d.stack_name}) to confirm`, confirm),
    failedDelete ? field('Resources to retain (logical IDs, comma-separated)', retain, 'The last delete failed: name the resources that block it to keep them.') : null,
    h('div', { class: 'actions' }, go),
    messages,
  );
}

