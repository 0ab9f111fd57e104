import * as fs from 'fs';
import * as https from 'https';
import axios, { AxiosInstance, AxiosRequestConfig } from 'axios';
import * as tl from 'azure-pipelines-task-lib/task';

/** Every request has a deadline; this is the default when a caller gives none. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

/**
 * Proxy and CA settings from the agent (Agent.ProxyUrl, Agent.CAInfo).
 * axios does not read them by itself.
 */
export function agentNetworkConfig(url: string): AxiosRequestConfig {
  const config: AxiosRequestConfig = {};
  const proxy = tl.getHttpProxyConfiguration(url);
  if (proxy && proxy.proxyUrl) {
    const p = new URL(proxy.proxyUrl);
    config.proxy = {
      protocol: p.protocol.replace(':', ''),
      host: p.hostname,
      port: Number(p.port) || (p.protocol === 'https:' ? 443 : 80),
      ...(proxy.proxyUsername ? { auth: { username: proxy.proxyUsername, password: proxy.proxyPassword ?? '' } } : {}),
    };
  }
  const cert = tl.getHttpCertConfiguration();
  if (cert && cert.caFile && fs.existsSync(cert.caFile)) {
    config.httpsAgent = new https.Agent({ ca: fs.readFileSync(cert.caFile) });
  }
  return config;
}

/** An axios instance for one service: agent network settings, a timeout, no throwing on status. */
export function createHttpClient(baseURL: string, options: { timeoutMs?: number; headers?: Record<string, string> } = {}): AxiosInstance {
  return axios.create({
    baseURL,
    timeout: options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
    headers: options.headers,
    validateStatus: () => true,
    maxRedirects: 5,
    ...agentNetworkConfig(baseURL),
  });
}

/** Network failures worth another try (resets, refusals, timeouts), as opposed to HTTP answers. */
export function isTransientNetworkError(err: unknown): boolean {
  const code = (err as { code?: string })?.code ?? '';
  return [
    'ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN',
    'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'ERR_SOCKET_CONNECTION_TIMEOUT', 'ERR_BAD_RESPONSE',
  ].includes(code) || /socket hang up|timeout/i.test((err as Error)?.message ?? '');
}
