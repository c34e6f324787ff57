import { SensoryError } from '../domain/errors.js';

/** What this file reads of an Ajv error (the validators run with `verbose: true`, so `data` and `parentSchema` are set). */
export interface SchemaIssue {
  readonly keyword: string;
  readonly instancePath: string;
  readonly params: Record<string, any>;
  readonly message?: string;
  readonly data?: unknown;
  readonly schema?: unknown;
  readonly parentSchema?: Record<string, any>;
}

const PLACES: Record<string, string> = { body: 'the body', querystring: 'the query string', params: 'the URL', headers: 'the headers' };

/** `/categories/0/name` → `categories[0].name`; the part of the request it sits in when empty. */
function fieldName(instancePath: string): string {
  let field = '';
  for (const part of instancePath.split('/').slice(1)) {
    const name = part.replace(/~1/g, '/').replace(/~0/g, '~');
    field += /^\d+$/.test(name) ? `[${name}]` : field === '' ? name : `.${name}`;
  }
  return field;
}

function join(parent: string, child: string): string {
  return parent === '' ? child : `${parent}.${child}`;
}

/** The value sent, quoted and cut short: people see what they sent, never a whole upload. */
export function shown(value: unknown): string {
  if (value === undefined) return 'nothing';
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

const TYPES: Record<string, string> = {
  integer: 'a whole number',
  number: 'a number',
  string: 'a string',
  boolean: 'true or false',
  array: 'an array',
  object: 'an object',
  null: 'null',
};

function typeWords(type: unknown): string {
  const types = Array.isArray(type) ? type : [type];
  return types.map((t) => TYPES[String(t)] ?? String(t)).join(' or ');
}

/** `from 1 to 4096`, `at least 0`, `at most 50` from the schema that holds the bound. */
function range(schema: Record<string, any> | undefined, unit = ''): string {
  const min = schema?.minimum ?? schema?.minLength ?? schema?.minItems;
  const max = schema?.maximum ?? schema?.maxLength ?? schema?.maxItems;
  if (min !== undefined && max !== undefined) return `from ${min} to ${max}${unit}`;
  if (min !== undefined) return `at least ${min}${unit}`;
  return `at most ${max}${unit}`;
}

function oneOf(values: readonly unknown[]): string {
  return values.map((value) => (typeof value === 'string' ? value : JSON.stringify(value))).join(', ');
}

/** The values an anyOf of constants (or enums) allows; empty when it is a union of other shapes. */
function unionValues(schema: unknown): unknown[] {
  if (!Array.isArray(schema)) return [];
  const values: unknown[] = [];
  for (const branch of schema as Record<string, any>[]) {
    if (branch?.const !== undefined) values.push(branch.const);
    else if (Array.isArray(branch?.enum)) values.push(...branch.enum);
    else return [];
  }
  return values;
}

/**
 * One schema issue as a sentence for people: the field, what was sent and what is allowed, e.g.
 * `split must be one of train, test, all; got "validation"`, or `unknown field "foo" in the body`.
 */
export function describeIssue(issue: SchemaIssue, context: string): { field: string; message: string } {
  const place = PLACES[context] ?? 'the request';
  const at = fieldName(issue.instancePath);
  const field = at === '' ? context : at;
  const got = `; got ${shown(issue.data)}`;
  const parent = issue.parentSchema;
  switch (issue.keyword) {
    case 'required': {
      const missing = join(at, String(issue.params.missingProperty));
      return { field: missing, message: `${missing} is required in ${place}` };
    }
    case 'additionalProperties': {
      const unknown = join(at, String(issue.params.additionalProperty));
      const known = Object.keys(parent?.properties ?? {});
      const allowed = known.length > 0 ? `; allowed: ${known.join(', ')}` : '';
      return { field: unknown, message: `unknown field ${JSON.stringify(unknown)} in ${place}${allowed}` };
    }
    case 'enum':
      return { field, message: `${field} must be one of ${oneOf(issue.params.allowedValues ?? [])}${got}` };
    case 'const':
      return { field, message: `${field} must be ${oneOf([issue.params.allowedValue])}${got}` };
    case 'anyOf': {
      const values = unionValues(issue.schema);
      if (values.length > 0) return { field, message: `${field} must be one of ${oneOf(values)}${got}` };
      return { field, message: `${field} has none of the accepted forms${got}` };
    }
    case 'type':
      return { field, message: `${field} must be ${typeWords(issue.params.type)}${got}` };
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
      return { field, message: `${field} must be ${range(parent)}${got}` };
    case 'minLength':
    case 'maxLength': {
      const length = typeof issue.data === 'string' ? ` (${[...issue.data].length} characters)` : '';
      return { field, message: `${field} must have ${range(parent, ' characters')}${got}${length}` };
    }
    case 'minItems':
    case 'maxItems': {
      const length = Array.isArray(issue.data) ? `; got ${issue.data.length}` : got;
      return { field, message: `${field} must have ${range(parent, ' items')}${length}` };
    }
    case 'minProperties': {
      const known = Object.keys(parent?.properties ?? {});
      if (issue.params.limit === 1 && known.length > 0) return { field, message: `${at === '' ? place : field} must have at least one of ${known.join(', ')}` };
      return { field, message: `${field} must have at least ${issue.params.limit} keys` };
    }
    case 'maxProperties':
      return { field, message: `${field} must have ${issue.keyword === 'maxProperties' ? 'at most' : 'at least'} ${issue.params.limit} keys` };
    case 'pattern': {
      const allowed = typeof parent?.['x-allowed'] === 'string' ? parent['x-allowed'] : `text matching ${issue.params.pattern}`;
      return { field, message: `${field} must be ${allowed}${got}` };
    }
    default:
      return { field, message: `${field} ${issue.message ?? 'is not valid'}${got}` };
  }
}

/** The error a failed schema validation answers with (400, naming the field). */
export function validationError(issues: readonly SchemaIssue[], context: string | undefined): SensoryError {
  // An anyOf carries its branches' failures before it: the anyOf says it best.
  const issue = issues.find((candidate) => candidate.keyword === 'anyOf') ?? issues[0];
  const { field, message } = issue
    ? describeIssue(issue, context ?? 'request')
    : { field: context ?? 'request', message: `${PLACES[context ?? ''] ?? 'the request'} is not valid` };
  return new SensoryError('SENSORY_ERR_BAD_REQUEST', message, { field });
}
