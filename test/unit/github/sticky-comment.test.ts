import { describe, expect, it } from 'vitest';
import { hasMarker, markerPipeline, reportMarker, withMarker } from '../../../runner/github/sticky-comment.js';

describe('report marker', () => {
  it('is a hidden HTML comment naming the pipeline', () => {
    expect(reportMarker('heat')).toBe('<!-- hpcflow:report pipeline=heat -->');
    expect(reportMarker('my pipe')).toBe('<!-- hpcflow:report pipeline=my_pipe -->');
    expect(reportMarker('a-->b')).not.toContain('-->b');
    expect(reportMarker('  ')).toBe('<!-- hpcflow:report pipeline=default -->');
  });

  it('finds the marker of one pipeline only, on a line of its own', () => {
    const body = withMarker('## report', 'heat');
    expect(hasMarker(body, 'heat')).toBe(true);
    expect(hasMarker(body, 'heat2')).toBe(false);
    expect(hasMarker(body, 'hea')).toBe(false);
    expect(hasMarker('quoting `<!-- hpcflow:report pipeline=heat -->` inline', 'heat')).toBe(false);
    expect(hasMarker(null, 'heat')).toBe(false);
    expect(markerPipeline(body)).toBe('heat');
    expect(markerPipeline('nothing')).toBeNull();
  });

  it('withMarker keeps exactly one marker, last', () => {
    const once = withMarker('text', 'p');
    expect(withMarker(once, 'p')).toBe(once);
    expect(once).toBe('text\n\n<!-- hpcflow:report pipeline=p -->\n');
  });
});
