// lint-openapi.mjs: checks docs/openapi.yaml as code generators need it.
// Redocly's "recommended" rules (the OpenAPI 3.0 structure, unique
// operationIds, tags described, ...) but two: operation-4xx-response
// (/health, /ready and /metrics answer no 4xx of their own) and
// info-license (the repository states none). Then bookd's own: every
// operation has an operationId equal to its x-bookd-op (the name of its
// row in api/ops.c; web.page and web.file for the pages of web/,
// x-bookd-web), every operation but the unlimited ones (x-bookd-limit:
// none, the pages) answers 429 with Retry-After, every 4xx/5xx answer is the Error
// schema (CompatError on the seed's routes, /functions/v1/book, cancel and
// events), every 201 carries Location. Any warning or error: exit 1.
import { createConfig, lint } from '@redocly/openapi-core';
import { readFileSync } from 'node:fs';
import yaml from 'js-yaml';

const file = process.argv[2];
if (!file) {
	console.error('usage: lint-openapi.mjs <openapi.yaml>');
	process.exit(2);
}
let problems = 0;
const config = await createConfig({
	extends: ['recommended'],
	rules: { 'operation-4xx-response': 'off', 'info-license': 'off' },
});
for (const p of await lint({ ref: file, config })) {
	const at = p.location?.[0]?.pointer ?? '';
	console.error(`${p.severity}: ${p.ruleId}: ${p.message} ${at}`);
	if (p.severity === 'error' || p.severity === 'warn')
		problems++;
}

const doc = yaml.load(readFileSync(file, 'utf8'));
const ref = (o) => {
	while (o && o.$ref) {
		const parts = o.$ref.replace(/^#\//, '').split('/');
		o = parts.reduce((a, k) => a?.[k], doc);
	}
	return o;
};
const bad = (where, what) => {
	console.error(`bookd: ${where}: ${what}`);
	problems++;
};
let ops = 0;
const methods = ['get', 'put', 'post', 'patch', 'delete', 'head', 'options'];
for (const [path, item] of Object.entries(doc.paths)) {
	for (const m of methods) {
		const op = item[m];
		if (!op)
			continue;
		ops++;
		const where = `${m.toUpperCase()} ${path}`;
		// a page of web/ (x-bookd-web) is no operation of the table
		// and has no rate limit
		const web = op['x-bookd-web'] === true;
		if (!op.operationId)
			bad(where, 'no operationId');
		else if (!web && op.operationId !== op['x-bookd-op'])
			bad(where, `operationId ${op.operationId} is not ` +
				`x-bookd-op ${op['x-bookd-op']}`);
		const limited = !web && op['x-bookd-limit'] !== 'none';
		const rs = op.responses ?? {};
		if (limited !== ('429' in rs))
			bad(where, limited ? 'no 429 answer'
				: '429 on an unlimited operation');
		if ('429' in rs && !ref(rs['429']).headers?.['Retry-After'])
			bad(where, '429 without Retry-After');
		for (const [code, r0] of Object.entries(rs)) {
			const r = ref(r0);
			if (code === '201' && !r.headers?.Location)
				bad(where, '201 without Location');
			if (!/^[45]/.test(code))
				continue;
			const schema = r.content?.['application/json']?.schema;
			const want = /^\/functions\/v1\/(book|cancel|events)$/
				.test(path) ? 'CompatError' : 'Error';
			if (schema?.$ref !== `#/components/schemas/${want}`)
				bad(where, `${code} is not the ${want} schema`);
		}
	}
}
console.log(`lint-openapi: ${ops} operations, ${problems} problems`);
process.exit(problems ? 1 : 0);
