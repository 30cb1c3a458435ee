// Shared TypeBox schemas: the error body, pagination, and small field types.
import { type TSchema, Type } from '@sinclair/typebox';
import { AppError, ERROR_CATALOGUE, ERROR_CODES } from '../shared/errors.ts';

export const ErrorBody = Type.Object(
  {
    error: Type.Object({
      code: Type.Union(ERROR_CODES.map((c) => Type.Literal(c)), { description: 'Stable machine-readable code; see the error catalogue.' }),
      message: Type.String(),
      details: Type.Optional(Type.Unknown()),
    }),
  },
  { $id: 'ErrorBody', title: 'ErrorBody' },
);

const errorStatuses = [...new Set(Object.values(ERROR_CATALOGUE).map((e) => e.status))];

/** Adds the error body for every error status the API can return. */
export function withErrors<T extends Record<number, TSchema>>(ok: T): T & Record<number, TSchema> {
  const out: Record<number, TSchema> = { ...ok };
  for (const s of errorStatuses) out[s] = Type.Ref('ErrorBody');
  return out as T & Record<number, TSchema>;
}

export const Code = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9][A-Za-z0-9._:-]*$' });
export const Iso = Type.String({ format: 'date-time' });
export const NonNegInt = Type.Integer({ minimum: 0, maximum: 2_000_000_000 });
export const Int = Type.Integer({ minimum: -2_000_000_000, maximum: 2_000_000_000 });

export const PageQuery = {
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100, description: 'Page size; at most 1000.' })),
  after: Type.Optional(Type.String({ maxLength: 200, description: 'Cursor: the next_cursor of the previous page.' })),
};

export const Page = <T extends TSchema>(item: T) =>
  Type.Object({ items: Type.Array(item), next_cursor: Type.Union([Type.String(), Type.Null()]) });

export const security = [{ apiKey: [] }];

/** A schema or null. */
export const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);

/** A string enum with its literal union as the static type. */
export const Enum = <T extends readonly string[]>(xs: T, opts: { description?: string; default?: T[number] } = {}) =>
  Type.Unsafe<T[number]>({ type: 'string', enum: [...xs], ...opts });

/** A documented batch limit: exceeding it is page_too_large, not a schema error. */
export const batchCap =
  (field: string, max: number) =>
  async (req: { body: unknown }): Promise<void> => {
    const list = (req.body as Record<string, unknown> | null)?.[field];
    if (Array.isArray(list) && list.length > max) throw new AppError('page_too_large', `At most ${max.toLocaleString('en')} ${field} per call (got ${list.length})`);
  };
