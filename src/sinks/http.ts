/** One HTTP request for a sink, with Node's fetch; a status that means "try again" throws. */

export interface HttpAnswer { status: number; text: string }

export async function request(url: string, init: { method: string; headers: Record<string, string>; body?: string }): Promise<HttpAnswer> {
  let res: Response;
  try {
    res = await fetch(url, { method: init.method, headers: init.headers, body: init.body });
  } catch (e) {
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    throw new Error(`${init.method} ${redact(url)}: ${cause?.code ?? cause?.message ?? (e as Error).message}`);
  }
  const text = await res.text();
  // Overload and server failures are worth retrying; the caller decides about the rest.
  if (res.status === 429 || res.status >= 500) throw new Error(`${init.method} ${redact(url)}: ${res.status} ${text.slice(0, 200)}`);
  return { status: res.status, text };
}

/**
 * A store URL without its credentials, and the basic-auth header they (or explicit ones) make.
 * `http://user:pass@host:9200/` → base `http://host:9200`, `Basic dXNlcjpwYXNz`.
 */
export function storeEndpoint(url: string, username?: string, password?: string): { base: string; authorization: string | null } {
  const u = new URL(url);
  const user = username ?? decodeURIComponent(u.username);
  const pass = password ?? decodeURIComponent(u.password);
  u.username = '';
  u.password = '';
  u.search = '';
  return { base: u.toString().replace(/\/$/, ''), authorization: user ? basicAuth(user, pass) : null };
}

export function basicAuth(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

/** A URL fit for an error message: no credentials. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.toString();
  } catch {
    return url;
  }
}
