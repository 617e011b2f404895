// check-answer.mjs: checks one of bookd's answers against what
// docs/openapi.yaml says it is, as the generated client's types read it:
// every `required` property present, each value of its documented type
// (null only where `nullable`), through $ref, allOf, items and nested
// objects. Extra properties are not refused (the document leaves some
// out). Used by tests/integration/test_openapi.sh on live answers.
// Written here, not with a JSON Schema validator: OpenAPI 3.0's `nullable`
// (beside an allOf, too) is not JSON Schema, and these few rules are what
// the generated types rely on; it needs no package beyond js-yaml.
//   node check-answer.mjs <openapi.yaml> <METHOD> <path> <status> <body.json>
// Exit 0 when it matches; 1 with each difference on stderr; 2 on misuse
// (no such operation or answer in the document).
import { readFileSync } from 'node:fs';
import yaml from 'js-yaml';

const [file, method, url, status, bodyFile] = process.argv.slice(2);
if (!bodyFile) {
	console.error('usage: check-answer.mjs <openapi.yaml> <METHOD> <path> <status> <body.json>');
	process.exit(2);
}
const doc = yaml.load(readFileSync(file, 'utf8'));
const deref = (o) => {
	while (o && o.$ref)
		o = o.$ref.replace(/^#\//, '').split('/').reduce((a, k) => a?.[k], doc);
	return o;
};

// the operation whose path template matches url (query left out)
const path = url.split('?')[0];
const template = Object.keys(doc.paths).find((t) =>
	new RegExp('^' + t.replace(/\{[^}]+\}/g, '[^/]+') + '$').test(path));
const answer = deref(doc.paths[template]?.[method.toLowerCase()]?.responses?.[status]);
const schema = answer?.content?.['application/json']?.schema;
if (!schema) {
	console.error(`check-answer: the document has no JSON ${status} for ${method} ${path}`);
	process.exit(2);
}

const problems = [];
const typeOf = (v) => (Array.isArray(v) ? 'array'
	: v === null ? 'null'
	: Number.isInteger(v) ? 'integer'
	: typeof v);
function check(s, v, at) {
	s = deref(s);
	if (!s)
		return;
	if (v === null) {
		// `nullable` beside an allOf (a Booking or null) allows it
		const typed = [s, ...(s.allOf ?? []).map(deref)].find((p) => p?.type);
		if (!s.nullable && typed && !typed.nullable)
			problems.push(`${at}: null, documented as ${typed.type} (not nullable)`);
		return;
	}
	for (const part of s.allOf ?? [])
		check(part, v, at);
	const t = typeOf(v);
	if (s.type && s.type !== t && !(s.type === 'number' && t === 'integer')) {
		problems.push(`${at}: ${t}, documented as ${s.type}`);
		return;
	}
	if (t === 'object') {
		for (const k of s.required ?? [])
			if (!(k in v))
				problems.push(`${at}: no "${k}", documented as required`);
		for (const [k, sub] of Object.entries(s.properties ?? {}))
			if (k in v)
				check(sub, v[k], `${at}.${k}`);
	} else if (t === 'array' && s.items) {
		v.forEach((item, i) => check(s.items, item, `${at}[${i}]`));
	}
}
check(schema, JSON.parse(readFileSync(bodyFile, 'utf8')), `${method} ${template} ${status}`);
for (const p of problems)
	console.error(p);
process.exit(problems.length ? 1 : 0);
