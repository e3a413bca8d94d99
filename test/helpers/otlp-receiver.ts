/** The trace receiver of tests is the repository's one OTLP sink (scripts/lib/otlp-sink.ts), spans decoded. */
import { startOtlpSink } from '../../scripts/lib/otlp-sink';

export { SPAN_KIND, type ReceivedSpan } from '../../scripts/lib/otlp-sink';

export const startOtlpReceiver = () => startOtlpSink({ keepSpans: true });
