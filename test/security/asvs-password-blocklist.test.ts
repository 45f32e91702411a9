/**
 * ASVS 5.0 §6.2.4 (common passwords refused) and §6.2.11 (context-specific words refused), at the
 * rule itself; test/security/asvs-v6.test.ts shows the routes applying it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dictionary } from '@zxcvbn-ts/language-common';
import { blockedPasswordReason } from '../../src/core/password-blocklist.ts';

test('ASVS 6.2.4: the most common passwords of policy length are refused, in any case or width', () => {
  for (const password of ['password', '12345678', 'qwertyuiop', 'PASSWORD', 'Ｐａｓｓｗｏｒｄ', 'iloveyou', 'trustno1', 'baseball']) {
    assert.match(blockedPasswordReason(password, 8) ?? '', /common/, password);
  }
});

test('ASVS 6.2.4: the 3,000 most common passwords that meet the length rule are all refused', () => {
  const top = dictionary['passwords-common'].filter((word) => [...word].length >= 8).slice(0, 3000);
  assert.equal(top.length, 3000);
  assert.deepEqual(top.filter((password) => blockedPasswordReason(password, 8) === null), []);
});

test('a strong passphrase is accepted', () => {
  assert.equal(blockedPasswordReason('correct horse battery staple', 8, ['alice', 'alice@example.com']), null);
  assert.equal(blockedPasswordReason('k7#Vq2!mZp', 8), null);
});

test('ASVS 6.2.11: the service name and its derivatives are refused', () => {
  for (const password of ['latchkey', 'Latchkey2024!', '!!latchkey!!', 'wukongim123']) {
    assert.notEqual(blockedPasswordReason(password, 8), null, password);
  }
});

test('ASVS 6.2.11: the account\'s username, name and email (and their parts) with only digits or symbols are refused', () => {
  const context = ['alice_w', 'Alice Wonder', 'alice.wonder@example.com'];
  for (const password of ['alice_w123', 'alice.wonder@example.com', 'wonder2024!', 'ALICE_W!!!', '1234alice_w']) {
    assert.notEqual(blockedPasswordReason(password, 8, context), null, password);
  }
  // The word inside a longer phrase with other letters is not a derivative.
  assert.equal(blockedPasswordReason('alice likes long walks', 8, context), null);
});

test('context words shorter than four letters do not refuse anything', () => {
  assert.equal(blockedPasswordReason('bob-2024-!!', 8, ['bob']), null);
});
