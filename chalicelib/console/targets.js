// 2. Connect an AWS account: register the target, then one of the guide's four methods, each ending in
// the same Test Credentials checklist (✓/✗, missing actions by service, the guide's fix for a failure).

import { badge, button, code, copyButton, errorBox, field, h, link, replace, row, section, setProblem, sleep, table, title, uid } from './dom.js';
import { get, newKey, patch, post, query } from './api.js';

// The guide's "Troubleshooting Authentication", by the API's error codes.
const FIXES = {
  ACCESS_DENIED: ['"Access Denied" errors', [
    'Verify credentials are correct',
    'Check IAM policy is attached',
    'Verify resource permissions (some actions need specific resources)',
    'Check for explicit denies in SCPs or permission boundaries',
  ]],
  INVALID_ROLE_ARN: ['"Invalid Role ARN" errors', [
    'Verify ARN format: arn:aws:iam::ACCOUNT_ID:role/ROLE_NAME',
    'Check role exists in target account',
    'Verify trust policy allows assumption',
  ]],
  SESSION_EXPIRED: ['"Session Expired" errors', [
    'Re-authenticate with fresh credentials',
    'For ADFS: Session tokens expire after 1 hour',
    'For assumed roles: Default session is 1 hour',
  ]],
  MFA_REQUIRED: ['"MFA Required" errors', [
    'Enable MFA on your IAM user',
    'Use session token with MFA code',
    'Or use role assumption with MFA condition',
  ]],
};
FIXES.MISSING_PERMISSIONS = FIXES.ACCESS_DENIED;

const LABELS = {
  assume_role: 'AWS account access',
  account_access: 'AWS account access',
  caller_identity: 'STS identity verification',
  account_match: 'Account ID confirmation',
  external_id_enforced: 'External ID enforced',
  permissions: 'Required IAM permissions',
  bootstrap_permissions: 'Permission to create the bootstrap stack',
};
const ORDER = ['assume_role', 'account_access', 'caller_identity', 'account_match', 'external_id_enforced', 'permissions', 'bootstrap_permissions'];

export function checklist(report) {
  const checks = [...report.checks].sort((a, b) => ORDER.indexOf(a.name) - ORDER.indexOf(b.name));
  const items = checks.map((check) => {
    const skipped = check.code === 'SKIPPED';
    const mark = check.ok ? h('span', { class: 'mark ok', 'aria-label': 'passed' }, '✓')
      : h('span', { class: `mark ${skipped ? 'skip' : 'fail'}`, 'aria-label': skipped ? 'skipped' : 'failed' }, '✗');
    const li = h('li', {}, mark, h('strong', {}, LABELS[check.name] || check.name), ': ', check.detail);
    if (!check.ok && !skipped) {
      const fix = FIXES[check.code];
      li.append(h('div', { class: 'fix' },
        check.code ? h('p', {}, h('code', {}, check.code)) : null,
        fix ? [h('p', {}, `What to do (${fix[0]}):`), h('ul', {}, fix[1].map((line) => h('li', {}, line)))] : null,
        check.hint ? h('p', { class: 'hint' }, check.hint) : null,
        check.name.endsWith('permissions') && report.missing_actions && report.missing_actions.length
          ? table('Missing actions by service', ['Service', 'Actions'], report.missing_actions.map((g) => row(g.service, g.actions.join(', '))))
          : null));
    }
    return li;
  });
  return h('div', { class: 'report' },
    h('p', { role: 'status' }, report.ok ? '✓ All checks passed.' : '✗ Some checks failed.'),
    h('ul', { class: 'checklist', 'aria-label': 'Test Credentials checklist' }, items));
}

// -- the list ---------------------------------------------------------------------------------------

export async function list(main, { signal }) {
  const body = h('div');
  title(main, 'Accounts', h('div', { class: 'actions' }, link('#/targets/new', 'Connect an AWS account')), body);
  try {
    const items = [];
    let token = null;
    do {
      const page = await get(`/targets${query({ limit: 100, next_token: token })}`, { signal });
      items.push(...page.items);
      token = page.next_token;
    } while (token);
    replace(body, table('Target accounts', ['Name', 'Account', 'Regions', 'Role ARN'],
      items.map((t) => row(link(`#/targets/${t.target_id}`, t.name), t.account_id, t.regions.join(', '), t.role_arn))));
  } catch (error) {
    if (error.name !== 'AbortError') replace(body, errorBox(error, 'The targets could not be listed'));
  }
}

// -- register ---------------------------------------------------------------------------------------

export async function create(main) {
  const name = h('input', { type: 'text', autocomplete: 'off' });
  const account = h('input', { type: 'text', inputmode: 'numeric', autocomplete: 'off' });
  const regions = h('input', { type: 'text', value: 'us-east-1', spellcheck: 'false' });
  const role = h('input', { type: 'text', spellcheck: 'false', autocomplete: 'off' });
  let roleEdited = false;
  role.addEventListener('input', () => { roleEdited = true; });
  account.addEventListener('input', () => {
    if (!roleEdited) role.value = /^\d{12}$/.test(account.value) ? `arn:aws:iam::${account.value}:role/NexusDeploymentRole` : '';
  });
  const messages = h('div', { class: 'messages' });
  const form = h('form', { class: 'narrow', novalidate: true },
    field('Target name', name, 'How the console names this account (for example team-a-prod).'),
    field('Account ID', account, 'The 12-digit AWS account to deploy into.'),
    field('Regions', regions, 'Comma-separated; the first one holds the bootstrap stack.'),
    field('Role ARN', role, 'The deployment role the service assumes there (the bootstrap template creates it).'),
    h('button', { type: 'submit' }, 'Register target'),
    messages);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    messages.replaceChildren();
    for (const input of [name, account, role]) setProblem(input, '');
    if (!name.value.trim()) { setProblem(name, 'Give the target a name.'); name.focus(); return; }
    if (!/^\d{12}$/.test(account.value)) { setProblem(account, 'An account ID is 12 digits.'); account.focus(); return; }
    if (!/^arn:aws(-cn|-us-gov)?:iam::\d{12}:role\/.+$/.test(role.value)) {
      setProblem(role, 'Use arn:aws:iam::ACCOUNT_ID:role/ROLE_NAME.');
      role.focus();
      return;
    }
    try {
      const { data } = await post('/targets', {
        name: name.value.trim(), account_id: account.value, role_arn: role.value,
        regions: regions.value.split(',').map((r) => r.trim()).filter(Boolean),
      });
      window.location.hash = `#/targets/${data.target_id}`;
    } catch (error) {
      messages.append(errorBox(error, 'The target was not registered'));
    }
  });
  title(main, 'Connect an AWS account',
    h('p', {}, 'Register the account, then connect it with one of four methods. Each ends with Test Credentials.'),
    form);
}

// -- edit a target: PATCH /targets/{id} (the account, role and external ID never change) --------------

function editForm(target, changed) {
  const name = h('input', { type: 'text', autocomplete: 'off', value: target.name });
  const regions = h('input', { type: 'text', spellcheck: 'false', value: target.regions.join(', ') });
  const profile = h('input', { type: 'text', spellcheck: 'false', value: target.permission_profile });
  const messages = h('div', { class: 'messages' });
  const form = h('form', { class: 'narrow', novalidate: true, 'aria-label': 'Edit target' },
    field('Target name', name),
    field('Regions', regions, 'Comma-separated. A region with live deployments cannot be removed.'),
    field('Permission profile', profile, 'After a change, deploy the bootstrap template again so the role gets it.'),
    h('button', { type: 'submit', class: 'secondary' }, 'Save changes'),
    messages);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    messages.replaceChildren();
    setProblem(name, '');
    if (!name.value.trim()) { setProblem(name, 'Give the target a name.'); name.focus(); return; }
    const body = {};
    const list = regions.value.split(',').map((r) => r.trim()).filter(Boolean);
    if (name.value.trim() !== target.name) body.name = name.value.trim();
    if (list.join(',') !== target.regions.join(',')) body.regions = list;
    if (profile.value.trim() !== target.permission_profile) body.permission_profile = profile.value.trim();
    if (!Object.keys(body).length) {
      messages.append(h('p', { role: 'status' }, 'Nothing to change.'));
      return;
    }
    try {
      const { data } = await patch(`/targets/${target.target_id}`, body, { idempotencyKey: newKey() });
      changed(data);
      messages.append(h('p', { role: 'status' }, 'Saved.'));
    } catch (error) {
      messages.append(errorBox(error, 'The target was not changed'));
    }
  });
  return h('details', { class: 'edit' }, h('summary', {}, 'Edit target'), form);
}

// -- a target: the four methods ---------------------------------------------------------------------

function tabs(label, panels) {
  const bar = h('div', { class: 'tabs', role: 'tablist', 'aria-label': label });
  const holder = h('div');
  const buttons = panels.map(([name, panel], index) => {
    const id = uid('tab');
    panel.setAttribute('role', 'tabpanel');
    panel.setAttribute('aria-labelledby', id);
    panel.hidden = index !== 0;
    const tab = h('button', { type: 'button', role: 'tab', id, 'aria-selected': index === 0 ? 'true' : 'false' }, name);
    tab.addEventListener('click', () => {
      buttons.forEach((b, i) => {
        b.setAttribute('aria-selected', i === index ? 'true' : 'false');
        panels[i][1].hidden = i !== index;
      });
    });
    holder.append(panel);
    return tab;
  });
  bar.append(...buttons);
  return h('div', {}, bar, holder);
}

function bootstrapProgress(report) {
  return h('div', {},
    table('Bootstrap stacks', ['Region', 'Stack', 'Status', 'Failed resource', 'Reason'],
      report.stacks.map((s) => row(s.region, s.stack_name, badge(s.status), s.failed_resource || '', s.reason || ''))),
    report.error ? errorBox(report.error, 'The bootstrap failed') : null,
    report.ok ? h('p', { class: 'notice', role: 'status' }, 'Bootstrapped: the deployment role exists. Now Test Credentials on the role below.') : null);
}

// answered(error): called once the service answered the request (error: its refusal, or null), before
// the stack is watched.
async function runBootstrap(target, body, out, signal, answered = () => {}) {
  replace(out, h('p', { role: 'status' }, 'Deploying the bootstrap stack in each region (this takes a minute on AWS)…'));
  try {
    let sent;
    try {
      sent = await post(`/targets/${target.target_id}/bootstrap`, body, { signal });
    } catch (error) {
      answered(error);
      throw error;
    }
    answered(null);
    let { status, data } = sent;
    replace(out, bootstrapProgress(data));
    while (status === 202 && !data.settled && !signal.aborted) {
      await sleep(2000, signal);
      data = await get(`/targets/${target.target_id}/bootstrap`, { signal });
      status = data.settled ? 200 : 202;
      replace(out, bootstrapProgress(data));
    }
  } catch (error) {
    if (error.name !== 'AbortError') replace(out, errorBox(error, 'The bootstrap was refused'));
  }
}

// CloudFormation's quick-create link (POST /targets/{id}/quick-create-link): the service puts the
// target's bootstrap template in its bucket and answers the AWS console link with the external ID and
// its role filled in. A service without a bucket answers 409 QUICK_CREATE_NOT_AVAILABLE: the command instead.
const AWS_CONSOLE = /^https:\/\/[a-z0-9-]+\.console\.aws\.amazon\.com\/cloudformation\//;

async function quickCreate(target, out, signal) {
  try {
    const { data } = await post(`/targets/${target.target_id}/quick-create-link`, {}, { signal });
    if (!AWS_CONSOLE.test(data.url)) throw new Error('The service answered a link that is not the AWS console.');
    replace(out, h('p', {},
      h('a', { href: data.url, target: '_blank', rel: 'noopener noreferrer' }, 'Launch the bootstrap stack in the AWS console'),
      ` (quick-create in ${data.region}: the template, the external ID and the service's role are filled in; sign in to account ${target.account_id}, acknowledge CAPABILITY_NAMED_IAM, then Create stack).`));
  } catch (error) {
    if (error.name === 'AbortError') return;
    if (error.code === 'QUICK_CREATE_NOT_AVAILABLE') {
      replace(out, h('p', { class: 'help' }, 'No quick-create link here (this service keeps no template bucket): run the command below.'));
    } else {
      replace(out, errorBox(error, 'No quick-create link'));
    }
  }
}

function roleMethod(target, signal) {
  const command = `NEXUS_API_URL=${window.location.origin}${window.location.pathname.replace(/\/console.*$/, '')} NEXUS_API_TOKEN=<your token> nexus targets bootstrap ${target.target_id} --profile <admin profile of ${target.account_id}>`;
  const download = button('Download bootstrap template', async () => {
    const template = await get(`/targets/${target.target_id}/bootstrap-template`);
    const blob = new Blob([JSON.stringify(template, null, 2)], { type: 'application/json' });
    const a = h('a', { href: URL.createObjectURL(blob), download: `nexus-bootstrap-${target.account_id}.json` });
    document.body.append(a);
    a.click();
    a.remove();
  }, { class: 'secondary' });
  const quick = h('div', { class: 'quick-create' }, h('p', { role: 'status' }, 'Preparing the quick-create link…'));
  quickCreate(target, quick, signal);
  return h('div', {},
    h('p', {}, 'Recommended. In account ', target.account_id, ', the role ', h('code', {}, target.role_arn),
      ' must trust the service with this external ID. Deploy the bootstrap template there (it creates the role exactly so), or set the trust policy yourself.'),
    h('h3', {}, 'External ID'), code(target.external_id), copyButton('Copy external ID', () => target.external_id),
    h('h3', {}, 'Trust policy'), code(JSON.stringify(target.trust_policy, null, 2)), copyButton('Copy trust policy', () => JSON.stringify(target.trust_policy, null, 2)),
    h('h3', {}, 'Bootstrap template'),
    quick,
    h('p', {}, 'Or deploy it as a CloudFormation stack in ', target.regions[0], ' with CAPABILITY_NAMED_IAM, or run:'),
    code(command), h('div', { class: 'actions' }, copyButton('Copy command', () => command), download));
}

function keysMethod(target, signal) {
  const keyId = h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false' });
  const secret = h('input', { type: 'password', autocomplete: 'off' });
  const token = h('input', { type: 'password', autocomplete: 'off' });
  const serial = h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false' });
  const mfa = h('input', { type: 'text', inputmode: 'numeric', autocomplete: 'one-time-code' });
  const out = h('div');
  function body() {
    const keys = { access_key_id: keyId.value.trim(), secret_access_key: secret.value };
    if (token.value) keys.session_token = token.value;
    if (serial.value.trim() || mfa.value.trim()) {
      keys.mfa_serial = serial.value.trim();
      keys.mfa_code = mfa.value.trim();
    }
    return { access_keys: keys };
  }
  // AWS accepts each MFA code once (a second GetSessionToken with it is refused): a request that carried
  // the code spends it, so the field empties and asks for the device's next code before the next step.
  const spent = h('p', { class: 'help', role: 'status', hidden: true });
  mfa.addEventListener('input', () => { spent.hidden = true; });
  // A request the service refused as such (4xx: invalid, unknown target) reached no AWS: its code is unspent.
  function spend(keys, error) {
    if (!keys.mfa_code || (error && error.status >= 400 && error.status < 500)) return;
    mfa.value = '';
    spent.textContent = 'Code used: AWS accepts each MFA code once. Enter the next code your device shows before the next step.';
    spent.hidden = false;
  }
  function check() {
    setProblem(keyId, /^[A-Z0-9]{16,128}$/.test(keyId.value.trim()) ? '' : 'An access key ID is 16 or more capital letters and digits.');
    setProblem(secret, secret.value.length >= 16 ? '' : 'Enter the secret access key.');
    const digits = mfa.value.trim();
    let codeProblem = '';
    if (serial.value.trim() && !digits) codeProblem = 'Enter the code your MFA device shows now (AWS accepts each code once).';
    else if (digits && !/^\d{6}$/.test(digits)) codeProblem = 'An MFA code is the 6 digits your device shows.';
    setProblem(mfa, codeProblem);
    const invalid = [keyId, secret, mfa].find((input) => input.getAttribute('aria-invalid'));
    if (invalid) invalid.focus();
    return !invalid;
  }
  const test = button('Test Credentials', async () => {
    if (!check()) return;
    replace(out, h('p', { role: 'status' }, 'Testing the keys…'));
    const sent = body();
    try {
      const { data } = await post('/credentials/test', { ...sent, target_id: target.target_id }, { signal });
      replace(out, checklist(data));
      spend(sent.access_keys, null);
    } catch (error) {
      if (error.name !== 'AbortError') replace(out, errorBox(error, 'The keys could not be tested'));
      spend(sent.access_keys, error);
    }
  });
  const boot = button('Bootstrap with these keys', async () => {
    if (!check()) return;
    const sent = body();
    await runBootstrap(target, sent, out, signal, (error) => spend(sent.access_keys, error));
  }, { class: 'secondary' });
  return h('div', {},
    h('p', {}, 'For this session only: the service uses the keys once, in memory, to deploy the bootstrap stack, then forgets them. They are not stored.'),
    field('Access Key ID', keyId), field('Secret Access Key', secret),
    field('Session token (optional)', token), field('MFA device serial or ARN (optional)', serial),
    field('MFA code', mfa, 'The 6 digits your MFA device shows, with its serial (GetSessionToken). Each code works once.'), spent,
    h('div', { class: 'actions' }, test, boot), out);
}

function profileMethod(target) {
  const profile = h('input', { type: 'text', value: 'my-deployment-profile', spellcheck: 'false' });
  const out = code('');
  const render = () => { out.textContent = `nexus targets bootstrap ${target.target_id} --profile ${profile.value || 'NAME'}`; };
  profile.addEventListener('input', render);
  render();
  return h('div', {},
    h('p', {}, 'A browser cannot read ~/.aws. Run this where your AWS CLI profile (SSO included) is configured, with NEXUS_API_URL and NEXUS_API_TOKEN set; then Test Credentials below.'),
    field('Profile name', profile), out, copyButton('Copy command', () => out.textContent));
}

function adfsMethod(target, signal) {
  const url = h('input', { type: 'url', spellcheck: 'false', placeholder: 'https://adfs.company.com/adfs/ls/IdpInitiatedSignOn.aspx' });
  const user = h('input', { type: 'text', autocomplete: 'username', spellcheck: 'false' });
  const password = h('input', { type: 'password', autocomplete: 'current-password' });
  const roles = h('div');
  const out = h('div');
  const sign = () => ({ adfs_url: url.value.trim(), username: user.value.trim(), password: password.value });
  function chosen() {
    const picked = roles.querySelector('input[name="adfs-role"]:checked');
    return picked ? picked.value : null;
  }
  const fetchRoles = button('Fetch Roles', async () => {
    setProblem(url, url.value.trim().startsWith('https://') ? '' : 'The ADFS URL starts with https://.');
    if (url.getAttribute('aria-invalid')) { url.focus(); return; }
    replace(roles, h('p', { role: 'status' }, 'Signing in at ADFS…'));
    try {
      const { data } = await post('/saml/roles', sign(), { signal });
      replace(roles, h('fieldset', {}, h('legend', {}, 'Roles from the assertion'),
        data.roles.map((r, i) => {
          const id = uid('role');
          return h('div', { class: 'field inline' },
            h('input', { type: 'radio', name: 'adfs-role', id, value: r.role_arn, checked: i === 0 }),
            h('label', { for: id }, r.role_arn));
        })));
    } catch (error) {
      if (error.name !== 'AbortError') replace(roles, errorBox(error, 'Fetch Roles failed'));
    }
  });
  const test = button('Test Credentials', async () => {
    if (!chosen()) { replace(out, errorBox({ message: 'Fetch Roles and pick one first.' }, 'No role')); return; }
    try {
      const { data } = await post('/credentials/test', { adfs: { ...sign(), role_arn: chosen() }, target_id: target.target_id }, { signal });
      replace(out, checklist(data));
    } catch (error) {
      if (error.name !== 'AbortError') replace(out, errorBox(error, 'The role could not be tested'));
    }
  });
  const boot = button('Bootstrap with this role', async () => {
    if (!chosen()) { replace(out, errorBox({ message: 'Fetch Roles and pick one first.' }, 'No role')); return; }
    await runBootstrap(target, { adfs: { ...sign(), role_arn: chosen() } }, out, signal);
  }, { class: 'secondary' });
  return h('div', {},
    h('p', {}, 'Sign in at your ADFS; pick one of the AWS roles it offers. The service signs in for this request only and keeps nothing.'),
    field('ADFS URL', url), field('Username', user), field('Password', password),
    h('div', { class: 'actions' }, fetchRoles), roles, h('div', { class: 'actions' }, test, boot), out);
}

export async function detail(main, { id, signal }) {
  let target;
  try {
    target = await get(`/targets/${id}`, { signal });
  } catch (error) {
    if (error.name !== 'AbortError') title(main, 'Account', errorBox(error, 'The target could not be read'));
    return;
  }
  const out = h('div');
  const validate = button('Test Credentials', async () => {
    replace(out, h('p', { role: 'status' }, 'Testing the deployment role…'));
    try {
      const { data } = await post(`/targets/${target.target_id}/validate`, {}, { signal });
      replace(out, checklist(data));
    } catch (error) {
      if (error.name !== 'AbortError') replace(out, errorBox(error, 'The role could not be tested'));
    }
  });
  const facts = h('dl', { class: 'facts' });
  const showFacts = () => replace(facts,
    h('dt', {}, 'Name'), h('dd', {}, target.name),
    h('dt', {}, 'Account ID'), h('dd', {}, target.account_id),
    h('dt', {}, 'Regions'), h('dd', {}, target.regions.join(', ')),
    h('dt', {}, 'Role ARN'), h('dd', {}, target.role_arn),
    h('dt', {}, 'Permission profile'), h('dd', {}, target.permission_profile));
  showFacts();
  title(main, `Account ${target.name}`,
    section('Target', facts, editForm(target, (changed) => {
      target = changed;
      showFacts();
      const heading = main.querySelector('h1');
      if (heading) heading.textContent = `Account ${target.name}`;
    })),
    section('Connect the account',
      tabs('Authentication method', [
        ['IAM Role ARN (recommended)', roleMethod(target, signal)],
        ['Access keys', keysMethod(target, signal)],
        ['AWS CLI profile', profileMethod(target)],
        ['ADFS/SAML', adfsMethod(target, signal)],
      ])),
    section('Test the deployment role',
      h('p', {}, 'The checklist the service runs before every deployment: it assumes the role with the external ID, checks that the role refuses a request without it, confirms the account and simulates every required action.'),
      validate, out));
}
