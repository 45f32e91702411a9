import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseSessionRecord, type SessionRecord } from '../../src/core/sessions/record.ts';

const record: SessionRecord = {
  uid: 'u1', device_flag: 1, device_id: 'd', device_name: 'n', device_model: 'm', method: 'password',
  ip: '127.0.0.1', user_agent: 'ua', created_at: 1, expires_at: 2,
};

describe('session record', () => {
  it('parses a stored record into the session of the sid it was read under', () => {
    assert.deepEqual(parseSessionRecord('sid-1', JSON.stringify(record)), { ...record, sid: 'sid-1' });
  });

  it('takes the sid from the key read, never from the stored JSON', () => {
    const session = parseSessionRecord('sid-from-key', JSON.stringify({ ...record, sid: 'sid-from-json' }));
    assert.equal(session?.sid, 'sid-from-key');
  });

  it('reads garbage, JSON that is not an object and a record without uid as no session', () => {
    for (const raw of ['not json', 'null', '42', '"text"', '[]', JSON.stringify({ ...record, uid: 7 })]) {
      assert.equal(parseSessionRecord('sid', raw), null, raw);
    }
  });
});
