// Health, readiness and the OpenAPI document: public routes.
import { Type } from '@sinclair/typebox';
import { sql } from 'kysely';
import type { App, AppOptions } from '../app.ts';
import { errorBody } from '../app.ts';

export function registerSystemRoutes(app: App, opts: AppOptions): void {
  app.get('/health', { config: { public: true }, schema: { tags: ['system'], summary: 'Liveness', response: { 200: Type.Object({ status: Type.Literal('ok') }) } } }, async () => ({ status: 'ok' as const }));

  app.get(
    '/ready',
    {
      config: { public: true },
      schema: { tags: ['system'], summary: 'Readiness: database reachable and projection loaded', response: { 200: Type.Object({ status: Type.Literal('ready'), backend: Type.String() }), 503: Type.Ref('ErrorBody') } },
    },
    async (_req, reply) => {
      try {
        await sql`select 1`.execute(opts.ctx.store.db);
      } catch {
        return reply.status(503).send(errorBody('not_ready', 'The database is unreachable') as never);
      }
      if (!opts.ctx.projection.loaded || (opts.isReady && !opts.isReady())) return reply.status(503).send(errorBody('not_ready', 'Still loading the availability projection') as never);
      return { status: 'ready' as const, backend: opts.ctx.store.dialect };
    },
  );

  app.get('/openapi.json', { config: { public: true }, schema: { hide: true } }, async () => app.swagger());
}
