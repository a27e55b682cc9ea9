export { buildSnapshot, SNAPSHOT_FORMAT, snapshotTime, type SnapshotFile, type SnapshotRecord } from "./snapshot-format.ts";
export { snapshotPath, writeSnapshotFile } from "./snapshot-file.ts";
export { cacheSnapshotSource, siteSnapshotSource, type SnapshotSource } from "./snapshot-sources.ts";
export { SnapshotWriter, type SnapshotMetrics, type SnapshotWriterOptions, type TypeOutcome } from "./snapshot-writer.ts";
