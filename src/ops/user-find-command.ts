/** `latchkey user find QUERY`: the uid of an account, from its username, name, email or phone. */
import type { AccountRepo } from '../ports/accounts.ts';

const SHOWN = 50;

/** Exit status: 0 when something matched, 1 when nothing did (as grep). */
export async function findUsers(accounts: Pick<AccountRepo, 'listUsers'>, query: string): Promise<number> {
  // The admin API's search: case-insensitive substring of username, name, email or phone.
  const { users, total } = await accounts.listUsers({ query, offset: 0, limit: SHOWN });
  process.stdout.write(users.map((user) => `${user.uid}\t${user.username}\t${user.status}\n`).join(''));
  if (total > users.length) process.stderr.write(`latchkey: ${total - users.length} more match; narrow the query\n`);
  if (total === 0) process.stderr.write(`latchkey: no account matches ${JSON.stringify(query)}\n`);
  return total === 0 ? 1 : 0;
}
