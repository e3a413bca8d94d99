/**
 * Errors Node's HTTP parser raises before Fastify sees a request (Fastify's `clientErrorHandler` option): answered
 * in the API's one error shape instead of Fastify's code-less default. 408 when the request did not arrive within
 * API_REQUEST_TIMEOUT_MS, 431 when the headers are too large, 414 when it is the request line (the URL) that
 * overflowed, 400 for anything else malformed. The connection is closed afterwards, as Node does.
 */
import { maxHeaderSize } from 'node:http';
import type { Socket } from 'node:net';
import { errorBody } from './errors';

interface ParserError extends Error {
  code?: string;
  /** A Buffer at run time (Node's http server); Fastify's typing describes its JSON form. */
  rawPacket?: unknown;
}

export function classifyClientError(err: ParserError): { status: number; code: string; message: string } {
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    return { status: 408, code: 'REQUEST_TIMEOUT', message: 'the request was not received in time' };
  }
  if (err.code === 'HPE_HEADER_OVERFLOW') {
    // Node's limit (http.maxHeaderSize) covers the request line and the headers together: when the request line
    // alone takes half of it, or the part read so far has no line end at all, the URL is what overflowed.
    const raw = Buffer.isBuffer(err.rawPacket) ? err.rawPacket : undefined;
    const lineEnd = raw ? raw.indexOf('\n') : 0;
    const startsRequest = raw !== undefined && /^[A-Z]+ /.test(raw.subarray(0, 16).toString('latin1'));
    const urlOverflow = startsRequest && (lineEnd < 0 || lineEnd >= maxHeaderSize / 2);
    return !urlOverflow
      ? { status: 431, code: 'HEADERS_TOO_LARGE', message: 'request headers exceed the allowed size' }
      : { status: 414, code: 'URI_TOO_LONG', message: 'request URL exceeds the allowed size' };
  }
  return { status: 400, code: 'BAD_REQUEST', message: `malformed HTTP request (${err.code ?? 'parse error'})` };
}

export function clientErrorHandler(err: ParserError, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const { status, code, message } = classifyClientError(err);
  const body = JSON.stringify(errorBody(status, code, message));
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${errorBody(status, code, message).error}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
        `Content-Type: application/json; charset=utf-8\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}
