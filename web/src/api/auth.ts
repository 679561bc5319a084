/**
 * The API key lives in the tab's sessionStorage: it survives reloads but not closing the tab, and is
 * never written anywhere else. It goes out as `Authorization: Bearer <key>` on HTTP and as
 * `connectionParams.authorization` on the WebSocket (the gateway reads both the same way).
 */
const STORAGE_KEY = 'sibyl.apiKey';

export function readApiKey(): string {
  try {
    return sessionStorage.getItem(STORAGE_KEY) ?? '';
  } catch {
    return ''; // storage disabled (privacy mode): the app still works without a key
  }
}

export function storeApiKey(key: string): void {
  try {
    if (key) sessionStorage.setItem(STORAGE_KEY, key);
    else sessionStorage.removeItem(STORAGE_KEY);
  } catch {
    // Nothing to do: the key then lasts as long as the page.
  }
}

export function authorization(key: string): string | undefined {
  return key ? `Bearer ${key}` : undefined;
}
