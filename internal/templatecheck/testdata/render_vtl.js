// render_vtl.js renders API Gateway mapping templates (Velocity) with
// velocityjs and the variables API Gateway gives a REST API template:
// $input, $util, $context. The Go tests in internal/templatecheck call it.
//
//   node render_vtl.js <path to the velocityjs package>  < request.json
//
// request.json: {"cases": [{"template": "...", "path": {...},
// "querystring": {...}, "header": {...}, "body": "raw request body",
// "context": {...}}]}. Every field but template may be left out.
// Prints one JSON array, one result per case, in order:
//   {"output": "..."}                           the rendered template
//   {"output": "...", "responseOverride": {..}} when the template set
//                                                $context.responseOverride
//   {"exception": "java.lang.X: ..."}          the template threw, as API
//       Gateway's Java code would (a malformed %-escape for $util.urlDecode):
//       API Gateway then answers 500 and calls no integration.
//   {"harnessError": "..."}                    this harness or velocityjs
//       could not render the case (an unknown method, a parse error): the
//       test must fail, it says nothing about API Gateway.
//
// How the helpers follow API Gateway (Java: Apache Velocity, java.lang.String,
// java.net.URLDecoder, Apache Commons Lang) and where they only approximate:
// - Java null is JavaScript undefined, so "$!x" renders "" for it as in Java
//   Velocity (velocityjs would render null as "null").
// - String methods are Java's: contains, matches (whole string, Java regex),
//   replaceAll/replaceFirst (Java regex and $n replacement), equals, length,
//   isEmpty, startsWith, endsWith, indexOf, substring, trim, toLowerCase,
//   toUpperCase, split. Java regexes run as JavaScript regexes with the u flag
//   (code points, like Java) and \s narrowed to Java's [ \t\n\x0B\f\r];
//   other differences (possessive quantifiers, \p{javaX}, inline flags) are
//   not translated: a regex JavaScript rejects is a harnessError.
//   Any other method called on a string is a harnessError, not a silent "".
// - Maps ($input.params(), $input.params().path, objects from $input.path)
//   answer get, containsKey, keySet, size and isEmpty with Java's semantics
//   (get is exact: no case folding, no inherited keys) and render as
//   {k=v, k2=v2}.
// - $input.path(p) / $input.json(p): the body is parsed as JSON (an empty
//   body is {}, as API Gateway treats it); JSONPath is the subset templates
//   use: $, .name, ['name'], [index]. path returns strings, booleans and
//   numbers as they are, JSON null and missing values as Java null. A body
//   that is not JSON makes $input.path throw (the request validator refuses
//   such bodies before any template runs). Numbers render the JavaScript way
//   (1.0 renders as 1, Java would print 1.0).
// - $util.urlDecode is java.net.URLDecoder.decode(s, "UTF-8"): + is a space;
//   runs of %XX become bytes decoded as UTF-8 with U+FFFD for malformed
//   sequences; a truncated or non-hex escape throws IllegalArgumentException;
//   Integer.parseInt's quirks are kept (%+1 is byte 1, %-1 throws, %-0 is
//   byte 0). Approximation: Java's Character.digit also takes non-ASCII
//   digits (%٤١ is "A"); this harness throws for them.
// - $util.urlEncode is java.net.URLEncoder.encode(s, "UTF-8").
// - $util.escapeJavaScript is Commons Lang StringEscapeUtils.escapeJavaScript:
//   ' " \ / are backslash-escaped (\' is not valid JSON: templates turn it
//   back), \b \t \n \f \r by name, other control and non-ASCII UTF-16 units as
//   \uXXXX (upper-case hex).
// - $util.parseJson, base64Encode, base64Decode: JSON.parse and base64 of
//   UTF-8.
// - $context: the values the case passes; responseOverride and
//   requestOverride start empty and are reported after rendering.
// - Whitespace: velocityjs removes the lines that hold only directives a
//   little differently from Java Velocity 1.7; only JSON whitespace differs.
'use strict';

const fs = require('fs');

const velocityPath = process.argv[2];
if (!velocityPath) {
  process.stderr.write('usage: node render_vtl.js <velocityjs package dir> < cases.json\n');
  process.exit(2);
}
const velocity = require(velocityPath);

class JavaException extends Error {
  constructor(type, message) {
    super(message);
    this.javaType = type;
    this.detail = message;
  }
}

class HarnessError extends Error {}

// ---------------------------------------------------------------- regexes

// javaRegex compiles a Java regex as a JavaScript one with equivalent
// semantics for the constructs templates use.
function javaRegex(re, flags) {
  if (typeof re !== 'string') throw new HarnessError('regex is not a string: ' + String(re));
  const javaSpace = ' \\t\\n\\x0B\\f\\r';
  let out = '';
  let inClass = false;
  for (let i = 0; i < re.length; i++) {
    const c = re[i];
    if (c === '\\' && i + 1 < re.length) {
      const n = re[i + 1];
      if (n === 's') {
        out += inClass ? javaSpace : '[' + javaSpace + ']';
      } else if (n === 'S') {
        if (inClass) throw new HarnessError('\\S inside a character class is not translated: ' + re);
        out += '[^' + javaSpace + ']';
      } else if (n === 'z') {
        out += '$(?![\\s\\S])';
      } else if (n === 'A') {
        out += '^';
      } else if (n === 'Z' || n === 'Q' || n === 'E' || n === 'G' || n === 'p' || n === 'P') {
        throw new HarnessError('Java regex construct \\' + n + ' is not translated: ' + re);
      } else {
        out += c + n;
      }
      i++;
      continue;
    }
    if (c === '[' && !inClass) inClass = true;
    else if (c === ']' && inClass) inClass = false;
    if (!inClass && c === '+' && /[*+?}]/.test(out[out.length - 1] || '') && out[out.length - 2] !== '\\') {
      throw new HarnessError('possessive quantifier is not translated: ' + re);
    }
    out += c;
  }
  if (/\(\?[a-zA-Z]/.test(re)) throw new HarnessError('inline flags are not translated: ' + re);
  try {
    return new RegExp(out, 'u' + (flags || ''));
  } catch (e) {
    throw new HarnessError('Java regex ' + JSON.stringify(re) + ' does not compile as JavaScript: ' + e.message);
  }
}

// javaReplacement expands a java.util.regex.Matcher replacement string.
function javaReplacement(repl, match) {
  let out = '';
  for (let i = 0; i < repl.length; i++) {
    const c = repl[i];
    if (c === '\\') {
      i++;
      if (i >= repl.length) throw new JavaException('java.lang.IllegalArgumentException', 'character to be escaped is missing');
      out += repl[i];
    } else if (c === '$') {
      i++;
      if (i >= repl.length || !/[0-9]/.test(repl[i])) throw new JavaException('java.lang.IllegalArgumentException', 'Illegal group reference');
      const g = Number(repl[i]);
      if (g >= match.length) throw new JavaException('java.lang.IndexOutOfBoundsException', 'No group ' + g);
      out += match[g] === undefined ? '' : match[g];
    } else {
      out += c;
    }
  }
  return out;
}

function javaReplace(s, re, repl, all) {
  const rx = javaRegex(re, all ? 'g' : '');
  return s.replace(rx, (...m) => {
    const groups = m.slice(0, m.length - 2);
    if (typeof groups[groups.length - 1] === 'object') groups.pop();
    return javaReplacement(String(repl), groups);
  });
}

// ------------------------------------------------------- Java String / Map

function str(v) {
  if (v === undefined || v === null) throw new JavaException('java.lang.NullPointerException', 'null argument');
  return typeof v === 'string' ? v : formatJava(v);
}

const stringMethods = {
  contains: (s, [x]) => s.includes(str(x)),
  // String.matches: the whole string must match.
  matches: (s, [re]) => javaRegex('^(?:' + str(re) + ')$', '').test(s),
  replaceAll: (s, [re, repl]) => javaReplace(s, re, repl, true),
  replaceFirst: (s, [re, repl]) => javaReplace(s, re, repl, false),
  equals: (s, [x]) => typeof x === 'string' && s === x,
  length: (s) => s.length,
  isEmpty: (s) => s.length === 0,
  startsWith: (s, [x]) => s.startsWith(str(x)),
  endsWith: (s, [x]) => s.endsWith(str(x)),
  indexOf: (s, [x]) => s.indexOf(str(x)),
  substring: (s, [a, b]) => {
    const end = b === undefined ? s.length : b;
    if (a < 0 || end > s.length || a > end) throw new JavaException('java.lang.StringIndexOutOfBoundsException', `begin ${a}, end ${end}, length ${s.length}`);
    return s.substring(a, end);
  },
  trim: (s) => s.replace(/^[\x00-\x20]+|[\x00-\x20]+$/g, ''),
  toLowerCase: (s) => s.toLowerCase(),
  toUpperCase: (s) => s.toUpperCase(),
  toString: (s) => s,
  split: (s, [re]) => {
    const parts = s.split(javaRegex(re, ''));
    while (parts.length > 1 && parts[parts.length - 1] === '') parts.pop();
    return parts;
  },
};

function isMap(v) {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const mapMethods = {
  get: (m, [k]) => (Object.prototype.hasOwnProperty.call(m, k) ? javaValue(m[k]) : undefined),
  containsKey: (m, [k]) => Object.prototype.hasOwnProperty.call(m, k),
  keySet: (m) => Object.keys(m),
  size: (m) => Object.keys(m).length,
  isEmpty: (m) => Object.keys(m).length === 0,
};

const listMethods = {
  get: (l, [i]) => {
    if (!Number.isInteger(i) || i < 0 || i >= l.length) throw new JavaException('java.lang.IndexOutOfBoundsException', `Index ${i} out of bounds for length ${l.length}`);
    return javaValue(l[i]);
  },
  size: (l) => l.length,
  isEmpty: (l) => l.length === 0,
  contains: (l, [x]) => l.includes(x),
};

function javaValue(v) {
  return v === null ? undefined : v;
}

// formatJava renders a value the way Java's toString would.
function formatJava(v) {
  if (v === undefined || v === null) return 'null';
  if (Array.isArray(v)) return '[' + v.map(formatJava).join(', ') + ']';
  if (isMap(v)) return '{' + Object.keys(v).map((k) => k + '=' + formatJava(v[k])).join(', ') + '}';
  return String(v);
}

// The helper objects ($input, $util) carry their methods as own properties;
// the handler below serves strings, maps and lists only.
const helperObjects = new WeakSet();

const javaMethods = {
  uid: 'java: String, Map, List',
  match: ({ context }) => typeof context === 'string' || Array.isArray(context) || (isMap(context) && !helperObjects.has(context)),
  resolve: ({ property, params, context }) => {
    let table;
    let kind;
    if (typeof context === 'string') {
      table = stringMethods;
      kind = 'String';
    } else if (Array.isArray(context)) {
      table = listMethods;
      kind = 'List';
    } else {
      table = mapMethods;
      kind = 'Map';
    }
    if (!Object.prototype.hasOwnProperty.call(table, property)) {
      throw new HarnessError(`${kind}.${property}() is not implemented by this harness`);
    }
    return table[property](context, params);
  },
};

// ------------------------------------------------------------- $util

function javaUrlDecode(s) {
  s = str(s);
  let out = '';
  let i = 0;
  const n = s.length;
  while (i < n) {
    const c = s[i];
    if (c === '+') {
      out += ' ';
      i++;
    } else if (c === '%') {
      const bytes = [];
      while (i + 2 < n && s[i] === '%') {
        const v = javaParseHex(s.substring(i + 1, i + 3));
        if (v < 0) throw new JavaException('java.lang.IllegalArgumentException', 'URLDecoder: Illegal hex characters in escape (%) pattern - negative value');
        bytes.push(v & 0xff);
        i += 3;
      }
      if (i < n && s[i] === '%') throw new JavaException('java.lang.IllegalArgumentException', 'URLDecoder: Incomplete trailing escape (%) pattern');
      out += new TextDecoder('utf-8', { fatal: false, ignoreBOM: true }).decode(Uint8Array.from(bytes));
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

// javaParseHex is Integer.parseInt(s, 16) for a two-character s: an optional
// sign, then hex digits.
function javaParseHex(s) {
  let sign = 1;
  let digits = s;
  if (s[0] === '+' || s[0] === '-') {
    sign = s[0] === '-' ? -1 : 1;
    digits = s.substring(1);
  }
  if (digits.length === 0) throw new JavaException('java.lang.IllegalArgumentException', 'URLDecoder: Illegal hex characters in escape (%) pattern - For input string: "' + s + '"');
  let v = 0;
  for (const ch of digits) {
    let d = -1;
    if (/[0-9]/.test(ch)) d = ch.charCodeAt(0) - 48;
    else if (/[a-f]/.test(ch)) d = ch.charCodeAt(0) - 87;
    else if (/[A-F]/.test(ch)) d = ch.charCodeAt(0) - 55;
    else if (/[\uFF10-\uFF19]/.test(ch)) d = ch.charCodeAt(0) - 0xff10;
    else if (/[\uFF21-\uFF26]/.test(ch)) d = ch.charCodeAt(0) - 0xff21 + 10;
    else if (/[\uFF41-\uFF46]/.test(ch)) d = ch.charCodeAt(0) - 0xff41 + 10;
    else if (/\p{Nd}/u.test(ch)) throw new HarnessError('non-ASCII digit in a %-escape: Java would decode it, this harness does not: ' + JSON.stringify(s));
    if (d < 0) throw new JavaException('java.lang.IllegalArgumentException', 'URLDecoder: Illegal hex characters in escape (%) pattern - For input string: "' + s + '"');
    v = v * 16 + d;
  }
  return sign * v;
}

function javaUrlEncode(s) {
  s = str(s);
  let out = '';
  for (const b of new TextEncoder().encode(s)) {
    const ch = String.fromCharCode(b);
    if (/[A-Za-z0-9.\-*_]/.test(ch)) out += ch;
    else if (ch === ' ') out += '+';
    else out += '%' + b.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

function escapeJavaScript(s) {
  if (s === undefined || s === null) return undefined;
  s = str(s);
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const ch = s.charCodeAt(i);
    const hex = ch.toString(16).toUpperCase();
    if (ch > 0xfff) out += '\\u' + hex;
    else if (ch > 0xff) out += '\\u0' + hex;
    else if (ch > 0x7f) out += '\\u00' + hex;
    else if (ch < 32) {
      switch (ch) {
        case 8: out += '\\b'; break;
        case 9: out += '\\t'; break;
        case 10: out += '\\n'; break;
        case 12: out += '\\f'; break;
        case 13: out += '\\r'; break;
        default: out += (ch > 0xf ? '\\u00' : '\\u000') + hex;
      }
    } else {
      switch (s[i]) {
        case "'": out += "\\'"; break;
        case '"': out += '\\"'; break;
        case '\\': out += '\\\\'; break;
        case '/': out += '\\/'; break;
        default: out += s[i];
      }
    }
  }
  return out;
}

function helper(o) {
  helperObjects.add(o);
  return o;
}

const util = helper({
  escapeJavaScript,
  urlDecode: javaUrlDecode,
  urlEncode: javaUrlEncode,
  parseJson: (s) => javaValue(JSON.parse(str(s))),
  base64Encode: (s) => Buffer.from(str(s), 'utf8').toString('base64'),
  base64Decode: (s) => Buffer.from(str(s), 'base64').toString('utf8'),
});

// ------------------------------------------------------------- $input

// jsonPath evaluates the JSONPath subset $, .name, ['name'], [index].
function jsonPath(doc, path) {
  path = str(path);
  if (path[0] !== '$') throw new HarnessError('JSONPath must start with $: ' + path);
  let v = doc;
  let i = 1;
  while (i < path.length) {
    let key;
    if (path[i] === '.') {
      const m = /^\.([A-Za-z0-9_$-]+)/.exec(path.substring(i));
      if (!m) throw new HarnessError('JSONPath not supported by this harness: ' + path);
      key = m[1];
      i += m[0].length;
    } else if (path[i] === '[') {
      const m = /^\[(?:'([^']*)'|"([^"]*)"|([0-9]+))\]/.exec(path.substring(i));
      if (!m) throw new HarnessError('JSONPath not supported by this harness: ' + path);
      key = m[3] !== undefined ? Number(m[3]) : m[1] !== undefined ? m[1] : m[2];
      i += m[0].length;
    } else {
      throw new HarnessError('JSONPath not supported by this harness: ' + path);
    }
    if (v === null || typeof v !== 'object') return undefined;
    if (Array.isArray(v) !== (typeof key === 'number')) return undefined;
    if (!Object.prototype.hasOwnProperty.call(v, key)) return undefined;
    v = v[key];
  }
  return v;
}

function makeInput(c) {
  const rawBody = c.body === undefined ? '' : c.body;
  let parsed;
  const doc = () => {
    if (parsed === undefined) {
      if (rawBody.trim() === '') parsed = { value: {} };
      else {
        try {
          parsed = { value: JSON.parse(rawBody) };
        } catch (e) {
          parsed = { error: e.message };
        }
      }
    }
    if (parsed.error) throw new JavaException('com.jayway.jsonpath.InvalidJsonException', 'body is not JSON: ' + parsed.error);
    return parsed.value;
  };
  const params = {
    path: Object.assign({}, c.path || {}),
    querystring: Object.assign({}, c.querystring || {}),
    header: Object.assign({}, c.header || {}),
  };
  return helper({
    body: rawBody,
    params: (name) => {
      if (name === undefined) return params;
      for (const k of ['path', 'querystring', 'header']) {
        if (Object.prototype.hasOwnProperty.call(params[k], name)) return params[k][name];
      }
      return '';
    },
    path: (p) => javaValue(jsonPath(doc(), p)),
    json: (p) => {
      const v = jsonPath(doc(), p);
      return v === undefined ? 'null' : JSON.stringify(v);
    },
  });
}

// ------------------------------------------------------------- render

function renderCase(c) {
  if (typeof c.template !== 'string') return { harnessError: 'case has no template' };
  const context = Object.assign({}, c.context || {});
  context.responseOverride = { header: {} };
  context.requestOverride = { header: {}, path: {}, querystring: {} };
  const vars = { input: makeInput(c), util, context };
  let asts;
  try {
    asts = velocity.parse(c.template);
  } catch (e) {
    return { harnessError: 'velocityjs cannot parse the template: ' + e.message };
  }
  try {
    const compiled = new velocity.Compile(asts, { customMethodHandlers: [javaMethods], env: 'development', escape: false });
    const output = compiled.render(vars);
    const result = { output };
    const ro = context.responseOverride;
    if (ro.status !== undefined || Object.keys(ro.header).length > 0) result.responseOverride = ro;
    return result;
  } catch (e) {
    if (e instanceof JavaException) return { exception: e.javaType + ': ' + e.detail };
    // velocityjs appends its position to errors thrown inside method calls.
    return { harnessError: (e instanceof HarnessError ? '' : (e.name || 'Error') + ': ') + e.message };
  }
}

const request = JSON.parse(fs.readFileSync(0, 'utf8'));
const results = (request.cases || []).map(renderCase);
process.stdout.write(JSON.stringify(results));
