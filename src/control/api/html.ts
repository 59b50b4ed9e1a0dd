/**
 * The HTML view of the API for browsers: the same JSON a client would get, embedded in the page
 * (pretty-printed, with its URLs clickable, and verbatim in a `<script type="application/json">`),
 * plus what a person exploring the API needs — forms for create, update, delete and each available
 * action, sort and filter controls and pagination for collections, and the equivalent curl
 * command. Everything interpolated is escaped.
 */
import {
  fieldOf,
  schemaOf,
  type FieldSchema,
  type JsonObject,
  type JsonValue,
} from '../../model/gdapi-schema.ts';

/** Escapes text for HTML element content and attribute values. */
export function escapeHtml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/** Quotes a string for a POSIX shell. */
function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

function pretty(value: JsonValue): string {
  // Escape first, then turn quoted absolute URLs into links.
  const escaped = escapeHtml(JSON.stringify(value, null, 2));
  return escaped.replace(/&quot;(https?:\/\/[^"&\s]*?)&quot;/g, (_m, url: string) => {
    return `&quot;<a href="${url}">${url}</a>&quot;`;
  });
}

function inputFor(name: string, field: FieldSchema, value: JsonValue | undefined): string {
  const label = `<label>${escapeHtml(name)}${field.required === true ? ' *' : ''} `;
  const current =
    value === undefined || value === null
      ? ''
      : typeof value === 'string'
        ? value
        : JSON.stringify(value);
  if (field.type === 'enum' && field.options !== undefined) {
    const options = ['', ...field.options]
      .map((o) => `<option${o === current ? ' selected' : ''}>${escapeHtml(o)}</option>`)
      .join('');
    return `${label}<select name="${escapeHtml(name)}">${options}</select></label>`;
  }
  if (field.type === 'boolean') {
    const options = ['', 'true', 'false']
      .map((o) => `<option${o === current ? ' selected' : ''}>${o}</option>`)
      .join('');
    return `${label}<select name="${escapeHtml(name)}">${options}</select></label>`;
  }
  const kind = field.type === 'int' || field.type === 'float' ? 'number' : 'text';
  const limits = [
    field.min === undefined ? '' : ` min="${field.min}"`,
    field.max === undefined ? '' : ` max="${field.max}"`,
    field.maxLength === undefined || kind !== 'text' ? '' : ` maxlength="${field.maxLength}"`,
  ].join('');
  const hint =
    kind === 'text' && field.type !== 'string' ? ` placeholder="${escapeHtml(field.type)}"` : '';
  return `${label}<input type="${kind}" name="${escapeHtml(name)}" value="${escapeHtml(current)}"${limits}${hint}></label>`;
}

/** How every curl hint (the pages', `serve`'s, `staging up`'s) passes the key pair. */
export const CURL_HINT = 'curl -u "$CLOUDBED_ACCESS_KEY:$CLOUDBED_SECRET_KEY"';

/** The shell line that sets the variables of {@link CURL_HINT} (to keys, or to `"$VAR"`s). */
export function credentialsExport(accessKey: string, secretKey: string): string {
  return `export CLOUDBED_ACCESS_KEY=${accessKey} CLOUDBED_SECRET_KEY=${secretKey}`;
}

/**
 * The curl command for a request: `method` on `url` (without `_format`/`_method`), with a JSON
 * body when `body` is given.
 */
export function curlCommand(method: string, url: string, body?: JsonObject): string {
  const u = new URL(url);
  u.searchParams.delete('_format');
  u.searchParams.delete('_method');
  const parts = [CURL_HINT];
  if (method !== 'GET') parts.push(`-X ${method}`);
  if (body !== undefined)
    parts.push(`-H 'Content-Type: application/json' -d ${shellQuote(JSON.stringify(body))}`);
  parts.push(shellQuote(u.href));
  return parts.join(' ');
}

/** An example body naming each field, with its default where it has one. */
function exampleBody(fields: readonly (readonly [string, FieldSchema])[]): JsonObject {
  const body: JsonObject = {};
  for (const [name, field] of fields) body[name] = field.default ?? `<${field.type}>`;
  return body;
}

function form(
  action: string,
  title: string,
  fields: string[],
  options: { readonly method?: 'get' | 'post'; readonly curl?: string } = {},
): string {
  const curl = options.curl === undefined ? '' : `<p><code>${escapeHtml(options.curl)}</code></p>`;
  return (
    `<form method="${options.method ?? 'post'}" action="${escapeHtml(action)}"><fieldset><legend>${escapeHtml(title)}</legend>` +
    `${fields.map((f) => `<div>${f}</div>`).join('')}<button type="submit">${escapeHtml(title)}</button>${curl}</fieldset></form>`
  );
}

function withParam(url: string, name: string, value: string): string {
  const u = new URL(url);
  u.searchParams.set(name, value);
  return u.href;
}

/** A JSON value as display text. */
function text(value: JsonValue | undefined): string {
  return typeof value === 'string' ? value : JSON.stringify(value ?? null);
}

function asObject(value: JsonValue | undefined): JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? value : {};
}

function resourceControls(resource: JsonObject): string {
  const type = typeof resource['type'] === 'string' ? resource['type'] : '';
  const schema = schemaOf(type);
  if (schema === undefined || schema.collection === undefined) return '';
  const self = asObject(resource['links'])['self'];
  if (typeof self !== 'string') return '';
  const parts: string[] = [];
  for (const [action, url] of Object.entries(asObject(resource['actions']))) {
    if (typeof url !== 'string') continue;
    const inputType = new Map(Object.entries(schema.resourceActions)).get(action)?.input;
    const fields =
      inputType === undefined ? [] : Object.entries(schemaOf(inputType)?.resourceFields ?? {});
    const inputs = fields.map(([n, f]) => inputFor(n, f, undefined));
    const curl = curlCommand('POST', url, fields.length > 0 ? exampleBody(fields) : undefined);
    parts.push(form(url, action, inputs, { curl }));
  }
  const updatable = Object.entries(schema.resourceFields).filter(([, f]) => f.update === true);
  if (schema.resourceMethods.includes('PUT') && updatable.length > 0)
    parts.push(
      form(
        withParam(self, '_method', 'PUT'),
        'update',
        updatable.map(([n, f]) => inputFor(n, f, resource[n])),
        { curl: curlCommand('PUT', self, exampleBody(updatable)) },
      ),
    );
  if (schema.resourceMethods.includes('DELETE') && resource['removed'] === null)
    parts.push(
      form(withParam(self, '_method', 'DELETE'), 'delete', [], {
        curl: curlCommand('DELETE', self),
      }),
    );
  return parts.join('\n');
}

function collectionControls(collection: JsonObject, url: string): string {
  const type = typeof collection['resourceType'] === 'string' ? collection['resourceType'] : '';
  const parts: string[] = [];
  const pagination = asObject(collection['pagination']);
  const nav: string[] = [];
  if (typeof pagination['first'] === 'string')
    nav.push(`<a href="${escapeHtml(pagination['first'])}">first</a>`);
  if (typeof pagination['next'] === 'string')
    nav.push(`<a href="${escapeHtml(pagination['next'])}">next</a>`);
  if (typeof pagination['total'] === 'number') nav.push(`total ${pagination['total']}`);
  if (nav.length > 0) parts.push(`<nav>${nav.join(' · ')}</nav>`);
  const sortLinks = Object.entries(asObject(collection['sortLinks']));
  if (sortLinks.length > 0) {
    const sort = asObject(collection['sort']);
    const reverse =
      typeof sort['reverse'] === 'string'
        ? ` (<a href="${escapeHtml(sort['reverse'])}">reverse</a>)`
        : '';
    parts.push(
      `<p>sort by: ${sortLinks
        .map(([name, link]) => `<a href="${escapeHtml(text(link))}">${escapeHtml(name)}</a>`)
        .join(' ')}${reverse}</p>`,
    );
  }
  const filters = Object.keys(asObject(collection['filters']));
  if (filters.length > 0) {
    const u = new URL(url);
    const current = (name: string): JsonValue | undefined => u.searchParams.get(name) ?? undefined;
    parts.push(
      form(
        `${u.origin}${u.pathname}`,
        'filter',
        filters.map((name) =>
          inputFor(name, fieldOf(type, name) ?? { type: 'string' }, current(name)),
        ),
        { method: 'get' },
      ),
    );
  }
  for (const [createType, createUrl] of Object.entries(asObject(collection['createTypes']))) {
    const schema = schemaOf(createType);
    if (schema === undefined || typeof createUrl !== 'string') continue;
    const fields = Object.entries(schema.resourceFields).filter(([, f]) => f.create === true);
    const inputs = fields.map(([n, f]) => inputFor(n, f, f.default));
    const example = exampleBody(fields.filter(([, f]) => f.required === true));
    parts.push(
      form(createUrl, `create ${createType}`, inputs, {
        curl: curlCommand('POST', createUrl, example),
      }),
    );
  }
  return parts.join('\n');
}

/** The pages' one stylesheet (the content security policy allows it by its hash). */
export const HTML_STYLE =
  'body{font-family:system-ui,sans-serif;margin:1.5em;max-width:70em}pre{background:#f6f6f6;padding:1em;overflow:auto}fieldset{margin:.5em 0}label{display:inline-block;margin:.2em 0}code{background:#f6f6f6}';

/**
 * The HTML page for a JSON response `value` to a request for `url` with `method`. `status` is
 * shown for errors.
 */
export function renderHtml(value: JsonValue, url: string, method: string, status: number): string {
  const object = asObject(value);
  const kind = object['type'];
  const title =
    kind === 'collection'
      ? `${text(object['resourceType'])} collection`
      : kind === 'error'
        ? `error ${status} ${text(object['code'])}`
        : `${text(kind)} ${typeof object['id'] === 'string' ? object['id'] : ''}`;
  const curl = curlCommand(method === 'HEAD' ? 'GET' : method, url);
  const controls =
    kind === 'collection'
      ? collectionControls(object, url)
      : kind === 'error'
        ? ''
        : resourceControls(object);
  const json = JSON.stringify(value).replace(/</g, '\\u003c');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>cloudbed: ${escapeHtml(title)}</title>
<style>${HTML_STYLE}</style>
</head><body>
<h1>${escapeHtml(title)}</h1>
<p>As JSON: <a href="${escapeHtml(withParam(url, '_format', 'json'))}">${escapeHtml(withParam(url, '_format', 'json'))}</a></p>
<p>With curl: <code>${escapeHtml(curl)}</code></p>
${controls}
<pre>${pretty(value)}</pre>
<script type="application/json" id="cloudbed-data">${json}</script>
</body></html>
`;
}
