import fp from 'fastify-plugin';
import type { FastifyError, FastifyInstance } from 'fastify';
import { ApiError, errorBody } from '../../errors';
import { traceFields } from '../../../common/telemetry/trace-context';

/** Maps every error to { statusCode, code, error, message }; unknown errors never leak their internals. */
export default fp(
  async function errorHandler(app: FastifyInstance) {
    app.setErrorHandler((err: FastifyError | ApiError, request, reply) => {
      if (err instanceof ApiError) {
        reply.headers(err.headers);
        return reply.status(err.statusCode).send(errorBody(err.statusCode, err.code, err.message));
      }
      if (err.validation) {
        const first = err.validation[0];
        const field = [err.validationContext, first?.instancePath?.replace(/^\//, '').replace(/\//g, '.')]
          .filter(Boolean)
          .join('.');
        const detail =
          first?.keyword === 'additionalProperties'
            ? `unknown field "${(first.params as { additionalProperty?: string }).additionalProperty}"`
            : first?.keyword === 'required'
              ? `missing required field "${(first.params as { missingProperty?: string }).missingProperty}"`
              : (first?.message ?? 'is invalid');
        const at = field ? `${field}: ` : '';
        return reply.status(400).send(errorBody(400, 'VALIDATION_ERROR', `${at}${detail}`));
      }
      if (err.code === 'FST_UNDER_PRESSURE') {
        app.apiMetrics.rejected('overloaded');
        return reply.status(503).send(errorBody(503, 'OVERLOADED', 'the API is overloaded; retry after the Retry-After delay'));
      }
      const status = err.statusCode && err.statusCode >= 400 ? err.statusCode : 500;
      if (status === 413) return reply.status(413).send(errorBody(413, 'PAYLOAD_TOO_LARGE', `request body exceeds ${app.config.api.bodyLimitBytes} bytes`));
      if (status === 429) return reply.status(429).send(errorBody(429, 'RATE_LIMITED', err.message));
      if (status >= 500) {
        request.log.error({ err, ...traceFields(request.otelSpan) }, 'unhandled error');
        return reply.status(status).send(errorBody(status, 'INTERNAL_ERROR', 'internal error'));
      }
      const code = (err.code ?? 'BAD_REQUEST').replace(/^FST_ERR_/, '');
      return reply.status(status).send(errorBody(status, code, err.message));
    });

    app.setNotFoundHandler((request, reply) => {
      reply.status(404).send(errorBody(404, 'ROUTE_NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`));
    });
  },
  { name: 'error-handler', dependencies: ['config', 'telemetry'] },
);
