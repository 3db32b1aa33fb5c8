import { describe, expect, it } from 'vitest';
import {
  cpuNanos,
  isLabelKey,
  isLabelValue,
  joinCommand,
  memoryBytes,
  parseTimeout,
  splitCommand,
  validateEntrypoint,
  validateEnvName,
  validateMetadataKey,
} from './validation';
import { expiryText, formatDuration, tokenLabel, userMetadata } from './format';
import { denyReason } from './permissions';
import { ALICE, BOB } from './test/gateway';

// Cases follow lifecycle/src/validate.rs's own tests, so the two stay in step.

describe('label rules', () => {
  it('accepts and rejects keys like the server', () => {
    expect(isLabelKey('team')).toBe(true);
    expect(isLabelKey('example.com/team')).toBe(true);
    expect(isLabelKey('a.b-c_d')).toBe(true);
    expect(isLabelKey('-team')).toBe(false);
    expect(isLabelKey('team-')).toBe(false);
    expect(isLabelKey('Example.com/team')).toBe(false);
    expect(isLabelKey('/team')).toBe(false);
    expect(isLabelKey('a/')).toBe(false);
    expect(isLabelKey('a'.repeat(63))).toBe(true);
    expect(isLabelKey('a'.repeat(64))).toBe(false);
    expect(isLabelKey('has space')).toBe(false);
    expect(isLabelKey(`${'a'.repeat(254)}/x`)).toBe(false);
  });

  it('checks values', () => {
    expect(isLabelValue('')).toBe(true);
    expect(isLabelValue('v1.2_3-x')).toBe(true);
    expect(isLabelValue('a b')).toBe(false);
    expect(isLabelValue('v'.repeat(64))).toBe(false);
  });

  it('reserves the system prefix and the scope keys', () => {
    expect(validateMetadataKey('opensandbox.io/owner')).toMatch(/reserved prefix/);
    expect(validateMetadataKey('access.owner')).toMatch(/reserved/);
    expect(validateMetadataKey('access.team')).toMatch(/reserved/);
    expect(validateMetadataKey('access.other')).toBeNull();
    expect(validateMetadataKey('project')).toBeNull();
  });
});

describe('quantities', () => {
  it('parses CPU like the server', () => {
    expect(cpuNanos('500m')).toBe(500_000_000);
    expect(cpuNanos('2')).toBe(2_000_000_000);
    expect(cpuNanos('0.25')).toBe(250_000_000);
    expect(cpuNanos(' 1 ')).toBe(1_000_000_000);
    expect(cpuNanos('1m')).toBe(1_000_000);
    expect(cpuNanos('0.5m')).toBeNull();
    expect(cpuNanos('-1')).toBeNull();
    expect(cpuNanos('lots')).toBeNull();
    expect(cpuNanos('0')).toBeNull();
    expect(cpuNanos('1e3')).toBeNull();
    expect(cpuNanos('1.2.3')).toBeNull();
    expect(cpuNanos('m')).toBeNull();
  });

  it('parses memory like the server', () => {
    expect(memoryBytes('512Mi')).toBe(512 * 1024 * 1024);
    expect(memoryBytes('1G')).toBe(1_000_000_000);
    expect(memoryBytes('1Gi')).toBe(1024 ** 3);
    expect(memoryBytes('6Mi')).toBe(6 * 1024 * 1024);
    expect(memoryBytes(String(6 * 1024 * 1024))).toBe(6 * 1024 * 1024);
    expect(memoryBytes('5Mi')).toBeNull();
    expect(memoryBytes('512MB')).toBeNull();
    expect(memoryBytes('1Ki')).toBeNull();
    expect(memoryBytes('')).toBeNull();
    expect(memoryBytes('Mi')).toBeNull();
    expect(memoryBytes('1 Gi')).toBeNull();
  });

  it('checks the timeout', () => {
    expect(parseTimeout('')).toEqual({ value: null, error: null });
    expect(parseTimeout('60')).toEqual({ value: 60, error: null });
    expect(parseTimeout('59').error).toMatch(/minimum of 60s/);
    expect(parseTimeout('-1').error).toMatch(/minimum/);
    expect(parseTimeout('1.5').error).toMatch(/whole number/);
    expect(parseTimeout('abc').error).toMatch(/whole number/);
  });

  it('checks env names', () => {
    expect(validateEnvName('PATH')).toBeNull();
    expect(validateEnvName('')).toMatch(/required/);
    expect(validateEnvName('A=B')).toMatch(/=/);
  });
});

describe('entrypoint splitting', () => {
  it.each([
    ['python /app/main.py', ['python', '/app/main.py']],
    ['  sh   -c  "echo hi; sleep 5"  ', ['sh', '-c', 'echo hi; sleep 5']],
    [`sh -c 'echo "$HOME"'`, ['sh', '-c', 'echo "$HOME"']],
    [`echo "a \\"quoted\\" word"`, ['echo', 'a "quoted" word']],
    [`echo a\\ b`, ['echo', 'a b']],
    [`echo '' x`, ['echo', '', 'x']],
    [`a'b'"c"`, ['abc']],
    ['', []],
  ])('%j → %j', (input, tokens) => {
    expect(splitCommand(input)).toEqual({ tokens, error: null });
  });

  it('reports unclosed quotes', () => {
    expect(splitCommand(`sh -c 'oops`).error).toMatch(/single quote/);
    expect(splitCommand(`sh -c "oops`).error).toMatch(/double quote/);
  });

  it('needs a non-empty command', () => {
    expect(validateEntrypoint([], null)).toMatch(/at least one command/);
    expect(validateEntrypoint(['', 'x'], null)).toMatch(/at least one command/);
    expect(validateEntrypoint(['sh'], null)).toBeNull();
  });

  it('joins an argv back into a command line that splits the same', () => {
    const argv = ['sh', '-c', `echo 'hi' "there"; sleep 1`, ''];
    expect(splitCommand(joinCommand(argv)).tokens).toEqual(argv);
  });
});

describe('display helpers', () => {
  it('shows the readable part of a scope token', () => {
    expect(tokenLabel('alice.4kq0abc')).toBe('alice');
    expect(tokenLabel('plain')).toBe('plain');
  });

  it('hides the scope keys from the editable metadata', () => {
    expect(userMetadata({ 'access.owner': 'a.1', 'access.team': 't.2', b: '2', a: '1' })).toEqual([
      ['a', '1'],
      ['b', '2'],
    ]);
  });

  it('formats durations and expiry', () => {
    expect(formatDuration(59_000)).toBe('59s');
    expect(formatDuration(61_000)).toBe('1m 1s');
    expect(formatDuration(3_600_000 + 120_000)).toBe('1h 2m');
    expect(formatDuration(90_000_000)).toBe('1d 1h');
    const now = Date.parse('2030-01-01T00:00:00Z');
    expect(expiryText('2030-01-01T00:01:00Z', now)).toBe('in 1m 0s');
    expect(expiryText('2029-12-31T23:59:50Z', now)).toBe('expired 10s ago');
    expect(expiryText(null, now)).toBe('no expiry');
  });

  it('explains a missing permission with the role', () => {
    expect(denyReason(ALICE, 'sandbox:delete')).toBeNull();
    expect(denyReason(BOB, 'sandbox:delete')).toBe('Your role (read_only) does not allow deleting sandboxes.');
  });
});
