// 3. The Deployment Wizard: one step at a time, each validated before Next.
// Target and region -> Template (upload, paste or s3://) -> Parameters and tags (a form generated from
// POST /templates/describe) -> Review (a plan: the change set as a table) -> Deploy and watch (the
// deployment's page follows its events with a cursor).

import { button, errorBox, field, h, replace, section, setProblem, sleep, title } from './dom.js';
import { get, newKey, post, put, query } from './api.js';
import { parameterForm, tagEditor } from './params.js';
import { changesTable, failureBox } from './deployments.js';

const STEPS = ['Target and region', 'Template', 'Parameters and tags', 'Review', 'Deploy and watch'];
const STACK_NAME = /^[a-zA-Z][-a-zA-Z0-9]{0,127}$/;

export async function view(main, { signal }) {
  const state = { step: 0, targets: [], summary: null, form: null, tags: tagEditor({}), deployment: null, planned: null };
  const progress = h('ol', { class: 'steps', 'aria-label': 'Wizard steps' });
  const body = h('div');
  const nav = h('div', { class: 'actions' });
  const messages = h('div', { class: 'messages' });
  title(main, 'New deployment', progress, body, messages, nav);

  try {
    let token = null;
    do {
      const page = await get(`/targets${query({ limit: 100, next_token: token })}`, { signal });
      state.targets.push(...page.items);
      token = page.next_token;
    } while (token);
  } catch (error) {
    if (error.name === 'AbortError') return;
    replace(body, errorBox(error, 'The targets could not be listed'));
    return;
  }

  // Step 1
  const target = h('select', {}, state.targets.map((t) => h('option', { value: t.target_id }, `${t.name} (${t.account_id})`)));
  const region = h('select', {});
  const stackName = h('input', { type: 'text', spellcheck: 'false', autocomplete: 'off' });
  function fillRegions() {
    const chosen = state.targets.find((t) => t.target_id === target.value);
    replace(region, (chosen ? chosen.regions : []).map((r) => h('option', { value: r }, r)));
  }
  target.addEventListener('change', fillRegions);
  fillRegions();
  const step1 = h('div', {},
    state.targets.length ? null : h('p', { class: 'notice' }, 'Connect an AWS account first: ', h('a', { href: '#/targets/new' }, 'Connect an AWS account'), '.'),
    field('Target account', target), field('Region', region),
    field('Stack name', stackName, 'Letters, digits and hyphens, starting with a letter (at most 128).'));

  // Step 2
  const file = h('input', { type: 'file', accept: '.json,.yaml,.yml,.template,application/json,text/yaml' });
  const pasted = h('textarea', { rows: 14, cols: 80, spellcheck: 'false' });
  const s3Url = h('input', { type: 'text', spellcheck: 'false', placeholder: 's3://bucket/key.yaml' });
  file.addEventListener('change', async () => {
    if (file.files && file.files[0]) pasted.value = await file.files[0].text();
  });
  const step2 = h('div', {},
    field('Upload a template file', file, 'JSON or YAML; its text appears below.'),
    field('Template body', pasted),
    field('Or a template in S3', s3Url, 'An s3:// URL in a bucket of the target account.'));

  // Step 3 and 4 are built from the answers.
  const step3 = h('div');
  const step4 = h('div');

  const panels = [step1, step2, step3, step4];

  function render() {
    replace(progress, STEPS.map((name, i) => h('li', { 'aria-current': i === state.step ? 'step' : null }, `${i + 1}. ${name}`)));
    replace(body, section(`Step ${state.step + 1} of ${STEPS.length}: ${STEPS[state.step]}`, panels[state.step]));
    const back = button('Back', () => { messages.replaceChildren(); state.step -= 1; render(); }, { class: 'secondary', disabled: state.step === 0 });
    const next = state.step < 3
      ? button('Next', () => advance())
      : h('button', { type: 'button', onclick: () => deploy() }, 'Deploy');
    replace(nav, back, next);
  }

  async function advance() {
    messages.replaceChildren();
    const ok = await [checkTarget, checkTemplate, checkParameters][state.step]();
    if (!ok) return;
    state.step += 1;
    render();
    if (state.step === 3) await plan();
  }

  async function checkTarget() {
    setProblem(stackName, '');
    if (!target.value) {
      messages.append(errorBox({ message: 'Choose a target account.', hint: 'Connect an AWS account first.' }, 'No target'));
      return false;
    }
    if (!STACK_NAME.test(stackName.value)) {
      setProblem(stackName, 'The stack name must start with a letter and hold only letters, digits and hyphens.');
      stackName.focus();
      return false;
    }
    return true;
  }

  function templateSource() {
    return s3Url.value.trim() && !pasted.value.trim()
      ? { template_url: s3Url.value.trim(), target_id: target.value }
      : { template_body: pasted.value };
  }

  async function checkTemplate() {
    setProblem(pasted, '');
    if (!pasted.value.trim() && !s3Url.value.trim()) {
      setProblem(pasted, 'Upload, paste or name a template.');
      pasted.focus();
      return false;
    }
    try {
      const { data } = await post('/templates/describe', templateSource(), { signal });
      state.summary = data;
    } catch (error) {
      setProblem(pasted, error.message);
      messages.append(errorBox(error, 'The template was refused'));
      return false;
    }
    state.form = parameterForm(state.summary);
    const s = state.summary;
    replace(step3,
      s.description ? h('p', {}, s.description) : null,
      state.form.view,
      state.tags.view,
    );
    return true;
  }

  async function checkParameters() {
    const values = state.form.values();
    if (!values) {
      messages.append(errorBox({ message: 'Some parameters are not valid.', hint: 'Fix the fields marked above.' }, 'Check the parameters'));
      return false;
    }
    state.values = values;
    return true;
  }

  async function plan() {
    const s = state.summary;
    replace(step4, h('p', { role: 'status' }, 'Computing the plan (a change set)…'));
    const request = { ...templateSource(), parameters: state.values, tags: state.tags.values(), mode: 'plan' };
    try {
      if (state.deployment) {
        const { template_url: ignored, target_id: alsoIgnored, ...change } = request;
        await put(`/deployments/${state.deployment}`, change, { idempotencyKey: newKey(), signal });
      } else {
        const { data } = await post('/deployments', { ...request, target_id: target.value, region: region.value, stack_name: stackName.value }, { idempotencyKey: newKey(), signal });
        state.deployment = data.deployment_id;
      }
      let d;
      for (;;) {
        d = await get(`/deployments/${state.deployment}`, { signal });
        if (!['PENDING', 'IN_PROGRESS'].includes(d.operation.status)) break;
        await sleep(700, signal);
        if (signal.aborted) return;
      }
      state.planned = d;
      if (d.operation.status !== 'PLANNED') {
        replace(step4, failureBox(d) || errorBox({ message: `The plan ended ${d.operation.status}.` }, 'No plan'));
        return;
      }
      const iam = d.changes.some((c) => c.iam);
      replace(step4,
        h('dl', { class: 'facts' },
          h('dt', {}, 'Stack'), h('dd', {}, `${d.stack_name} in ${d.region}, account ${d.account_id}`),
          h('dt', {}, 'Resources'), h('dd', {}, Object.entries(s.resource_types).map(([t, n]) => `${t} × ${n}`).join(', ')),
          h('dt', {}, 'Capabilities'), h('dd', {}, s.capabilities.length ? s.capabilities.join(', ') : 'none'),
        ),
        iam ? h('p', { class: 'notice' }, 'This plan changes IAM resources (flagged below): review them before you deploy.') : null,
        changesTable(d.changes),
        h('p', {}, 'Deploy executes exactly this plan.'),
      );
    } catch (error) {
      if (error.name === 'AbortError') return;
      replace(step4, errorBox(error, 'The plan was refused'));
    }
  }

  async function deploy() {
    messages.replaceChildren();
    const d = state.planned;
    if (!d || d.operation.status !== 'PLANNED') {
      messages.append(errorBox({ message: 'There is no plan to deploy yet.', hint: 'Go back and fix what the plan reported.' }, 'Nothing to deploy'));
      return;
    }
    try {
      await post(`/deployments/${d.deployment_id}/apply`, { config_hash: d.config_hash }, { idempotencyKey: newKey() });
    } catch (error) {
      messages.append(errorBox(error, 'The deploy was refused'));
      return;
    }
    window.location.hash = `#/deployments/${d.deployment_id}`;
  }

  render();
}
