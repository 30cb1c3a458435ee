// PostgreSQL captures an order in one statement (src/db/bulk.ts, WriteBatch.flushGuarded): the
// reservation UPDATE and every insert together, in autocommit. If the UPDATE reserved fewer
// positions than asked (another order took the stock), this function raises, and the whole
// statement is undone: the caller re-sources, as after any lost race. SQLite needs none of it
// (its capture is a transaction inside a group commit).
import { type Kysely, sql } from 'kysely';
import { type Dialect, LOST_RACE_SQLSTATE } from '../database.ts';

export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  if (dialect !== 'postgres') return;
  await sql
    .raw(
      `create function oms_lost_race(reserved bigint, wanted bigint) returns boolean language plpgsql volatile as $$
begin
  raise exception 'lost race: % of % stock positions could be reserved', reserved, wanted using errcode = '${LOST_RACE_SQLSTATE}';
end
$$`,
    )
    .execute(db);
}
