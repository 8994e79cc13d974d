// Building the page. Everything that came from a user or from AWS goes in as text (text nodes and
// property values), never as markup: no module parses HTML (tests/api/test_console_files.py checks).

const PROPERTIES = new Set(['value', 'checked', 'disabled', 'selected', 'multiple', 'required', 'readOnly', 'hidden']);

// h('button', {type: 'button', onclick: fn}, 'Deploy') -> <button type="button">Deploy</button>
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (key === 'class') {
      el.className = value;
    } else if (PROPERTIES.has(key)) {
      el[key] = value;
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

let nextId = 0;
export function uid(prefix) {
  nextId += 1;
  return `${prefix}-${nextId}`;
}

// A labelled form field; `input` is the control, `help` text is tied to it by aria-describedby.
export function field(label, input, help) {
  const id = input.id || uid('f');
  input.id = id;
  const parts = [h('label', { for: id }, label), input];
  if (help) {
    const helpId = `${id}-help`;
    input.setAttribute('aria-describedby', helpId);
    parts.push(h('p', { class: 'help', id: helpId }, help));
  }
  const problem = h('p', { class: 'problem', id: `${id}-problem`, hidden: true });
  parts.push(problem);
  return h('div', { class: 'field' }, parts);
}

// Show or clear a field's problem (the message is text; the control gets aria-invalid).
export function setProblem(input, message) {
  const problem = document.getElementById(`${input.id}-problem`);
  if (!problem) return;
  if (message) {
    problem.textContent = message;
    problem.hidden = false;
    input.setAttribute('aria-invalid', 'true');
    const described = (input.getAttribute('aria-describedby') || '').split(' ').filter(Boolean);
    if (!described.includes(problem.id)) input.setAttribute('aria-describedby', [...described, problem.id].join(' '));
  } else {
    problem.textContent = '';
    problem.hidden = true;
    input.removeAttribute('aria-invalid');
  }
}

export function button(label, onclick, attrs = {}) {
  return h('button', { type: 'button', onclick, ...attrs }, label);
}

export function section(title, ...children) {
  const id = uid('s');
  return h('section', { 'aria-labelledby': id, class: 'panel' }, h('h2', { id }, title), children);
}

export function table(caption, headers, rows) {
  return h(
    'table',
    {},
    h('caption', {}, caption),
    h('thead', {}, h('tr', {}, headers.map((name) => h('th', { scope: 'col' }, name)))),
    h('tbody', {}, rows.length ? rows : h('tr', {}, h('td', { colspan: headers.length, class: 'empty' }, 'None yet.'))),
  );
}

export function row(...cells) {
  return h('tr', {}, cells.map((cell) => h('td', {}, cell)));
}

export function link(href, label) {
  return h('a', { href }, label);
}

const GOOD = new Set(['ACTIVE', 'SUCCEEDED', 'CREATE_COMPLETE', 'UPDATE_COMPLETE', 'PLANNED', 'SKIPPED']);
const BAD = new Set(['FAILED', 'CANCELLED', 'PAUSED']);
export function badge(status) {
  const text = status || '—';
  let kind = 'neutral';
  if (GOOD.has(text)) kind = 'good';
  else if (BAD.has(text) || /FAILED|ROLLBACK/.test(text)) kind = 'bad';
  else if (/IN_PROGRESS|PENDING|RUNNING/.test(text)) kind = 'busy';
  return h('span', { class: `badge ${kind}` }, text);
}

// An API error as the page shows it: what went wrong, and what to do.
export function errorBox(error, title = 'Something went wrong') {
  const box = h('div', { class: 'error', role: 'alert' }, h('p', { class: 'error-title' }, title));
  if (error && error.code) box.append(h('p', {}, h('code', {}, error.code), ' ', error.message || ''));
  else box.append(h('p', {}, String(error && error.message ? error.message : error)));
  if (error && error.hint) box.append(h('p', { class: 'hint' }, error.hint));
  const details = error && error.details;
  if (Array.isArray(details) && details.length && details[0] && details[0].field) {
    box.append(h('ul', {}, details.map((d) => h('li', {}, `${d.field}: ${d.problem}`))));
  } else if (details && typeof details === 'object' && !Array.isArray(details) && Object.keys(details).length) {
    box.append(h('pre', { class: 'details' }, JSON.stringify(details, null, 2)));
  }
  return box;
}

export function copyButton(label, text) {
  const note = h('span', { class: 'copied', role: 'status' });
  const btn = button(label, async () => {
    try {
      await navigator.clipboard.writeText(text());
      note.textContent = 'Copied';
    } catch {
      note.textContent = 'Copy failed: select the text and copy it';
    }
  });
  return h('span', { class: 'copy' }, btn, note);
}

export function code(text) {
  return h('pre', { class: 'code', tabindex: '0' }, text);
}

export function title(main, text, ...rest) {
  document.title = `${text} · NexusAI Deployer`;
  const heading = h('h1', { tabindex: '-1' }, text);
  replace(main, heading, rest);
  heading.focus();
  return heading;
}

export function ago(iso) {
  if (!iso) return '—';
  const when = new Date(iso);
  return h('time', { datetime: iso, title: iso }, when.toLocaleString());
}

export function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    if (signal) signal.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}
