/**
 * Telemetry must never change what the application does: a metric or span call that throws (a label typo, a
 * broken exporter, an SDK bug) is reported once per call site and otherwise ignored, instead of turning a
 * completed job into a retry or an HTTP 200 into a 500.
 */
export type TelemetryGuard = <T>(what: string, fn: () => T) => T | undefined;

export function createTelemetryGuard(report: (what: string, err: unknown) => void): TelemetryGuard {
  const reported = new Set<string>();
  return (what, fn) => {
    try {
      return fn();
    } catch (err) {
      if (!reported.has(what)) {
        reported.add(what);
        try {
          report(what, err);
        } catch {
          // nowhere left to report to
        }
      }
      return undefined;
    }
  };
}
