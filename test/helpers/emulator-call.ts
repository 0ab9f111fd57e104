// One request to the emulated DigitalOcean API with fetch, as a test drives it directly: the status,
// the headers, the body as text and, when it parses, as JSON.
import { Emulator } from '../harness/emulator';

export async function call(emu: Emulator, method: string, p: string, body?: unknown, token: string | null = emu.token) {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (token !== null) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${emu.apiUrl}${p}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, json, text };
}
