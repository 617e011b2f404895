// index.ts: the typed client for bookd's HTTP API. The types (src/schema.d.ts)
// are generated from docs/openapi.yaml by openapi-typescript (npm run
// generate); calls go through openapi-fetch, so a path, its parameters, its
// body and each status's answer are checked by the compiler. Errors come back
// as `error` typed from the document (the Error schema, or CompatError on
// the seed's routes), never thrown.
import createClient from 'openapi-fetch';
import type { Client } from 'openapi-fetch';
import type { components, operations, paths } from './schema.js';

export type { components, operations, paths };
export type Schemas = components['schemas'];
export type Event = Schemas['Event'];
export type Booking = Schemas['Booking'];
export type ApiError = Schemas['Error'];
export type ErrorCode = ApiError['error']['code'];
export type BookdClient = Client<paths>;

export interface BookdOptions {
	/** bookd's address, e.g. http://127.0.0.1:8080 */
	baseUrl: string;
	/** the service key, the anon key or a customer's JWT */
	token?: string;
	/** a custom fetch (tests, proxies) */
	fetch?: (input: Request) => Promise<Response>;
}

/** A client for one bookd and one credential. */
export function createBookdClient(opts: BookdOptions): BookdClient {
	return createClient<paths>({
		baseUrl: opts.baseUrl.replace(/\/+$/, ''),
		headers: opts.token
			? { Authorization: `Bearer ${opts.token}` }
			: undefined,
		fetch: opts.fetch,
	});
}

/** A fresh Idempotency-Key (bookings and cancels require one; a retry
 * sends the same key again). */
export function idempotencyKey(): string {
	const c = (globalThis as { crypto?: { randomUUID?: () => string } })
		.crypto;
	if (c?.randomUUID)
		return c.randomUUID();
	return `${Date.now().toString(36)}-` +
		Math.random().toString(36).slice(2, 14);
}

/** The error code of a refusal, or undefined when the answer is not one. */
export function errorCode(error: unknown): ErrorCode | undefined {
	const e = error as Partial<ApiError> | undefined;
	return e?.error?.code;
}
