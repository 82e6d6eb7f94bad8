import { describe, expect, it } from 'vitest';
import { parseBuildEvent } from '../../../../runner/executors/docker/build-events.js';

describe('parseBuildEvent', () => {
  it('reads stream, aux id, error and status lines', () => {
    expect(parseBuildEvent('{"stream":"Step 1/2 : FROM x\\n"}')).toEqual([{ kind: 'log', text: 'Step 1/2 : FROM x\n' }]);
    expect(parseBuildEvent('{"aux":{"ID":"sha256:abc"}}')).toEqual([{ kind: 'image-id', id: 'sha256:abc' }]);
    expect(
      parseBuildEvent('{"errorDetail":{"code":1,"message":"boom"},"error":"boom"}'),
    ).toEqual([{ kind: 'error', message: 'boom' }]);
    expect(parseBuildEvent('{"errorDetail":{"message":"only detail"}}')).toEqual([
      { kind: 'error', message: 'only detail' },
    ]);
    expect(parseBuildEvent('{"status":"Downloading","id":"l1"}')).toEqual([{ kind: 'log', text: 'l1: Downloading\n' }]);
  });
  it('keeps non-JSON text and skips blank lines', () => {
    expect(parseBuildEvent('not json')).toEqual([{ kind: 'log', text: 'not json' }]);
    expect(parseBuildEvent('  ')).toEqual([]);
    expect(parseBuildEvent('{}')).toEqual([]);
  });
});
