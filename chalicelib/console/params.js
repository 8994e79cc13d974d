// The parameter form generated from a template's description (POST /templates/describe), as
// CloudFormation's own console builds it: AllowedValues -> a select, NoEcho -> a password field,
// Default filled in, Description and ConstraintDescription shown, labels, groups and order from
// AWS::CloudFormation::Interface. The same constraints are checked here (before Next) and by the
// server on deploy (chalicelib/domain/parameters.py).

import { button, field, h, setProblem } from './dom.js';

const NUMBER = /^-?\d+(\.\d+)?$/;

// Mirrors chalicelib/domain/parameters.py `violation`; null when the value is acceptable.
export function violation(p, value) {
  const lists = p.type === 'CommaDelimitedList' || p.type.startsWith('List<');
  const values = lists ? value.split(',').map((v) => v.trim()) : [value];
  for (const v of values) {
    const numeric = p.type === 'Number' || p.type === 'List<Number>';
    if (numeric && !NUMBER.test(v)) return 'must be a number';
    if (p.allowed_values && p.allowed_values.length && !p.allowed_values.map(String).includes(v)) {
      return `must be one of ${p.allowed_values.join(', ')}`;
    }
    if (numeric) {
      const n = Number(v);
      if (p.min_value !== null && p.min_value !== undefined && n < p.min_value) return `must be at least ${p.min_value}`;
      if (p.max_value !== null && p.max_value !== undefined && n > p.max_value) return `must be at most ${p.max_value}`;
    } else {
      if (p.min_length !== null && p.min_length !== undefined && v.length < p.min_length) return `must be at least ${p.min_length} characters`;
      if (p.max_length !== null && p.max_length !== undefined && v.length > p.max_length) return `must be at most ${p.max_length} characters`;
      if (p.allowed_pattern) {
        let pattern;
        try {
          pattern = new RegExp(`^(?:${p.allowed_pattern})$`, 'u');
        } catch {
          pattern = null;
        }
        if (pattern && !pattern.test(v)) return `must match the pattern ${p.allowed_pattern}`;
      }
    }
  }
  return null;
}

function control(p, value, keepSecrets) {
  if (p.allowed_values && p.allowed_values.length) {
    const select = h('select', { name: p.name }, p.allowed_values.map((v) => h('option', { value: String(v), selected: String(v) === value }, String(v))));
    return select;
  }
  if (p.no_echo) {
    // Never show a secret: the field starts empty; on update, empty keeps the current value.
    return h('input', { type: 'password', name: p.name, autocomplete: 'new-password', value: keepSecrets ? '' : value, 'data-noecho': 'true' });
  }
  const numeric = p.type === 'Number';
  return h('input', { type: 'text', name: p.name, value, inputmode: numeric ? 'decimal' : null, spellcheck: 'false' });
}

function help(p, keepSecrets) {
  const parts = [];
  if (p.description) parts.push(p.description);
  if (p.type !== 'String') parts.push(`Type: ${p.type}`);
  if (p.constraint_description) parts.push(`Constraint: ${p.constraint_description}`);
  if (p.no_echo) parts.push(keepSecrets ? 'Secret (NoEcho): leave empty to keep the current value.' : 'Secret (NoEcho): never shown again.');
  return parts.join(' · ') || null;
}

export function orderedParameters(summary) {
  const byName = new Map(summary.parameters.map((p) => [p.name, p]));
  const groups = [];
  const placed = new Set();
  for (const group of summary.parameter_groups || []) {
    const members = group.parameters.filter((n) => byName.has(n) && !placed.has(n));
    members.forEach((n) => placed.add(n));
    if (members.length) groups.push({ label: group.label, parameters: members.map((n) => byName.get(n)) });
  }
  const rest = summary.parameters.filter((p) => !placed.has(p.name));
  if (rest.length) groups.push({ label: groups.length ? 'Other parameters' : 'Parameters', parameters: rest });
  return groups;
}

// {view, values()}: values() checks every field, shows each problem, and answers null when any fails.
export function parameterForm(summary, current = {}, options = {}) {
  const keepSecrets = Boolean(options.keepSecrets);
  const inputs = [];
  const groups = orderedParameters(summary);
  const view = h(
    'div',
    { class: 'parameters' },
    groups.length
      ? groups.map((group) => h(
        'fieldset',
        {},
        h('legend', {}, group.label),
        group.parameters.map((p) => {
          const start = p.no_echo ? '' : (current[p.name] ?? (p.default ?? ''));
          const input = control(p, String(start), keepSecrets);
          inputs.push([p, input]);
          return field(p.label || p.name, input, help(p, keepSecrets));
        }),
      ))
      : h('p', {}, 'This template has no parameters.'),
  );

  function values() {
    const result = {};
    let first = null;
    for (const [p, input] of inputs) {
      const value = input.value;
      let problem = null;
      if (p.no_echo && keepSecrets && value === '' && Object.hasOwn(current, p.name)) {
        setProblem(input, '');
        continue; // the server keeps the current value (UsePreviousValue)
      }
      if (value === '' && (p.default === null || p.default === undefined)) problem = 'is required';
      else if (value !== '' || p.default !== undefined) problem = violation(p, value);
      if (problem) {
        setProblem(input, p.constraint_description ? `${p.label || p.name}: ${p.constraint_description}` : `${p.label || p.name} ${problem}`);
        first = first || input;
      } else {
        setProblem(input, '');
        result[p.name] = value;
      }
    }
    if (first) {
      first.focus();
      return null;
    }
    return result;
  }

  return { view, values };
}

// Tags: key/value rows; user text stays in input values.
export function tagEditor(initial = {}) {
  const rows = h('div', { class: 'tags' });
  function addRow(key = '', value = '') {
    const k = h('input', { type: 'text', value: key, spellcheck: 'false' });
    const v = h('input', { type: 'text', value, spellcheck: 'false' });
    const line = h('div', { class: 'actions' }, field('Tag key', k), field('Tag value', v));
    line.append(button('Remove tag', () => line.remove(), { class: 'secondary' }));
    rows.append(line);
  }
  for (const [k, v] of Object.entries(initial || {})) addRow(k, v);
  const view = h('fieldset', {}, h('legend', {}, 'Tags'), rows, button('Add tag', () => addRow(), { class: 'secondary' }));
  function values() {
    const result = {};
    for (const line of rows.children) {
      const [k, v] = line.querySelectorAll('input');
      if (k.value.trim()) result[k.value.trim()] = v.value;
    }
    return result;
  }
  return { view, values };
}
