using System.Data.Common;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using SQLitePCL;
using MoTLab.Shared.Telemetry;
using MoTLab.WebApp.Data;

namespace MoTLab.WebApp.Runs;

/// <summary>Reads a run's metric history for charts: at most ~maxPoints rows, chosen per step-bucket so each
/// bucket keeps its lowest-loss, highest-loss and last row (spikes and the trend survive), plus every row
/// with an eval loss. A step range re-reads a zoomed window at full resolution. Long histories are read in
/// two passes: a lean scan of (step, loss) picks the rows, then only those rows are read whole.
/// A downsampled read (maxPoints ≤ <see cref="CachedUpTo"/>) is kept while the run's stored steps are unchanged (their
/// count and last step), and readers asking at once share one read: fifty pages opening a finished 50k-step run scan
/// it once.</summary>
public sealed class MetricsQuery(IDbContextFactory<MoTLabDb> dbs)
{
    public readonly record struct Key(long Step, double Loss, bool HasEval);

    /// <summary>What a chart draws of one run: the rows and, when a smoothing was asked for, each row's smoothed value
    /// of the metric, computed over the run's whole stored series (from its first step, whatever window was read), and
    /// the smoother's state after the last stored row, from which a live chart continues.</summary>
    public sealed record ChartRead(List<StepMetrics> Rows, double[]? Smoothed = null, Smoother? End = null);

    /// <summary>A metric to smooth over a run's stored series, and the run's planned steps (the time-weighted scale).</summary>
    public sealed record SmoothingOf(MetricInfo Metric, Smoothing Smoothing, long PlannedSteps);

    const int CachedUpTo = 10_000, CacheEntries = 256;
    readonly System.Collections.Concurrent.ConcurrentDictionary<(int Run, int Max, long From, long To, SmoothingOf? Smoothing), (long Count, long Last, Task<ChartRead> Read)> cache = new();

    /// <summary>The rows to draw; the list is shared with other readers and must not be changed.</summary>
    public async Task<List<StepMetrics>> ReadAsync(int runId, int maxPoints = 2000, long? fromStep = null, long? toStep = null, CancellationToken ct = default) =>
        (await ReadChartAsync(runId, null, maxPoints, fromStep, toStep, ct)).Rows;

    /// <summary>The rows to draw with the smoothed series of <paramref name="smoothing"/>'s metric (see <see cref="ChartRead"/>);
    /// the rows are shared with other readers and must not be changed, the smoother is the caller's own.</summary>
    public async Task<ChartRead> ReadChartAsync(int runId, SmoothingOf? smoothing, int maxPoints = 2000, long? fromStep = null, long? toStep = null, CancellationToken ct = default)
    {
        if (smoothing is { Metric.Column: null } || smoothing?.Smoothing.Kind == SmoothingKind.None) smoothing = null;
        if (maxPoints > CachedUpTo) return await ReadStoredAsync(runId, smoothing, maxPoints, fromStep, toStep, ct);
        var key = (runId, maxPoints, fromStep ?? long.MinValue, toStep ?? long.MaxValue, smoothing);
        var (count, last) = await VersionAsync(runId, ct);
        if (!(cache.TryGetValue(key, out var hit) && hit.Count == count && hit.Last == last && !hit.Read.IsFaulted && !hit.Read.IsCanceled))
        {
            if (cache.Count >= CacheEntries) cache.Clear();
            hit = (count, last, ReadStoredAsync(runId, smoothing, maxPoints, fromStep, toStep, CancellationToken.None));   // shared: no one reader's cancel ends it
            cache[key] = hit;
        }
        var read = await hit.Read.WaitAsync(ct);
        return read with { End = read.End?.Clone() };
    }

    /// <summary>Every eval loss of each of <paramref name="runIds"/>, in step order, as the reach metric reads them, in one
    /// query; a run without any has an empty list.</summary>
    public async Task<Dictionary<int, List<ReachMetric.Point>>> EvalPointsAsync(IReadOnlyCollection<int> runIds, CancellationToken ct = default)
    {
        var points = runIds.Distinct().ToDictionary(id => id, _ => new List<ReachMetric.Point>());
        await using var db = await dbs.CreateDbContextAsync(ct);
        var connection = db.Database.GetDbConnection();
        await connection.OpenAsync(ct);
        await using var cmd = Command(connection, """
            SELECT RunId, Step, IFNULL(ElapsedS, 0), Tokens, EvalLoss FROM Metrics
            WHERE RunId IN (SELECT value FROM json_each($runs)) AND EvalLoss IS NOT NULL ORDER BY RunId, Step
            """, ("$runs", JsonSerializer.Serialize(points.Keys)));
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct)) points[r.GetInt32(0)].Add(new ReachMetric.Point(r.GetInt64(1), r.GetDouble(2), r.GetInt64(3), r.GetDouble(4)));
        return points;
    }

    async Task<(long Count, long Last)> VersionAsync(int runId, CancellationToken ct)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        var connection = db.Database.GetDbConnection();
        await connection.OpenAsync(ct);
        await using var cmd = Command(connection, "SELECT COUNT(*), IFNULL(MAX(Step), -1) FROM Metrics WHERE RunId = $run", ("$run", runId));
        await using var r = await cmd.ExecuteReaderAsync(ct);
        await r.ReadAsync(ct);
        return (r.GetInt64(0), r.GetInt64(1));
    }

    /// <summary>The same rows as <see cref="ReadAsync"/>, one at a time: a full-resolution read (maxPoints above
    /// <see cref="CachedUpTo"/>) is written out as it is read, never held whole.</summary>
    public async IAsyncEnumerable<StepMetrics> StreamAsync(int runId, int maxPoints = 2000, long? fromStep = null, long? toStep = null,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct = default)
    {
        if (maxPoints <= CachedUpTo)
        {
            foreach (var row in await ReadAsync(runId, maxPoints, fromStep, toStep, ct)) yield return row;
            yield break;
        }
        await using var db = await dbs.CreateDbContextAsync(ct);
        var connection = db.Database.GetDbConnection();
        await connection.OpenAsync(ct);
        var scan = await ScanAsync(connection, runId, null, fromStep, toStep, ct);
        await foreach (var row in RowsAsync(connection, runId, Downsample(scan.Keys, maxPoints).Select(i => scan.Keys[i].Step), ct)) yield return row;
    }

    async Task<ChartRead> ReadStoredAsync(int runId, SmoothingOf? smoothing, int maxPoints, long? fromStep, long? toStep, CancellationToken ct)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        var connection = db.Database.GetDbConnection();
        await connection.OpenAsync(ct);
        var scan = await ScanAsync(connection, runId, smoothing, fromStep, toStep, ct);
        var keep = Downsample(scan.Keys, maxPoints);
        var rows = new List<StepMetrics>(keep.Count);
        await foreach (var row in RowsAsync(connection, runId, keep.Select(i => scan.Keys[i].Step), ct)) rows.Add(row);
        return new ChartRead(rows, scan.Smoothed is { } s ? keep.Select(i => s[i]).ToArray() : null, scan.End);
    }

    /// <summary>A lean pass over (step, loss) of the window, which picks the rows to read whole; with a smoothing it reads
    /// the metric too, from the run's first step, and smooths it on the way.</summary>
    static async Task<(List<Key> Keys, double[]? Smoothed, Smoother? End)> ScanAsync(DbConnection connection, int runId, SmoothingOf? smoothing,
        long? fromStep, long? toStep, CancellationToken ct)
    {
        long to = toStep ?? long.MaxValue;
        var keys = new List<Key>();
        var smoothed = smoothing is null ? null : new List<double>();
        var smoother = smoothing?.Smoothing.Start(smoothing.PlannedSteps);
        // One integer carries the step and three flags (eval logged, loss NULL, metric NULL), so a row costs two or three
        // column reads, made straight on SQLite's statement: a 200,000-row scan through the ADO.NET reader was mostly the
        // reader's own per-row and per-column work. The metric is a column of its own unless it is the train loss.
        int valueAt = smoothing?.Metric.Column == nameof(StepMetrics.TrainLoss) ? 1 : 2;
        string value = smoothing is null || valueAt == 1 ? "NULL" : smoothing.Metric.Column!;
        var sql = $"""
            SELECT Step * 8 + (EvalLoss IS NOT NULL) * 4 + (TrainLoss IS NULL) * 2 + ({value} IS NULL), IFNULL(TrainLoss, 0){(valueAt == 2 ? $", IFNULL({value}, 0)" : "")}
            FROM Metrics WHERE RunId = ?1 AND Step BETWEEN ?2 AND ?3 ORDER BY Step
            """;
        long windowFrom = fromStep ?? long.MinValue;
        var db = ((Microsoft.Data.Sqlite.SqliteConnection)connection).Handle!;
        Check(db, raw.sqlite3_prepare_v2(db, sql, out var stmt));
        using (stmt)
        {
            raw.sqlite3_bind_int64(stmt, 1, runId);
            raw.sqlite3_bind_int64(stmt, 2, smoothing is null ? windowFrom : long.MinValue);   // smoothing starts at the run's first step
            raw.sqlite3_bind_int64(stmt, 3, to);
            DateTime? busySince = null;
            for (int n = 0; ; n++)
            {
                int rc = raw.sqlite3_step(stmt);
                if (rc == raw.SQLITE_DONE) break;
                if (rc is raw.SQLITE_BUSY or raw.SQLITE_LOCKED && (busySince ??= DateTime.UtcNow) > DateTime.UtcNow - BusyTimeout)
                { await Task.Delay(1, ct); continue; }   // as the ADO.NET reader waits out a lock, up to its default timeout
                if (rc != raw.SQLITE_ROW) Check(db, rc);
                if ((n & 0xFFFF) == 0) ct.ThrowIfCancellationRequested();
                long code = raw.sqlite3_column_int64(stmt, 0), step = code >> 3;
                double loss = (code & 2) != 0 ? double.NaN : raw.sqlite3_column_double(stmt, 1);
                double? smooth = smoother is null ? null
                    : smoother.Add(step, valueAt == 1 ? loss : (code & 1) != 0 ? double.NaN : raw.sqlite3_column_double(stmt, 2));
                if (step < windowFrom) continue;
                keys.Add(new Key(step, loss, (code & 4) != 0));
                smoothed?.Add(smooth!.Value);
            }
        }
        return (keys, smoothed?.ToArray(), smoother);
    }

    static async IAsyncEnumerable<StepMetrics> RowsAsync(DbConnection connection, int runId, IEnumerable<long> steps,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
    {
        await using var cmd = Command(connection, $"SELECT {MetricColumns.SelectList} FROM Metrics WHERE RunId = $run AND Step IN (SELECT value FROM json_each($steps)) ORDER BY Step",
            ("$run", runId), ("$steps", JsonSerializer.Serialize(steps)));
        await using var row = await cmd.ExecuteReaderAsync(ct);
        while (await row.ReadAsync(ct)) yield return MetricColumns.Read(row);
    }

    static readonly TimeSpan BusyTimeout = TimeSpan.FromSeconds(30);

    static void Check(SQLitePCL.sqlite3 db, int rc)
    {
        if (rc != raw.SQLITE_OK) throw new Microsoft.Data.Sqlite.SqliteException(raw.sqlite3_errmsg(db).utf8_to_string(), rc);
    }

    static DbCommand Command(DbConnection connection, string sql, params (string Name, object Value)[] parameters)
    {
        var cmd = connection.CreateCommand();
        cmd.CommandText = sql;
        foreach (var (name, value) in parameters) { var p = cmd.CreateParameter(); p.ParameterName = name; p.Value = value; cmd.Parameters.Add(p); }
        return cmd;
    }

    /// <summary>Indices of the rows to keep (ascending): all of them when they fit, else per bucket the
    /// min-loss, max-loss and last row, and every eval row.</summary>
    public static List<int> Downsample(IReadOnlyList<Key> rows, int maxPoints)
    {
        if (rows.Count <= maxPoints || maxPoints < 3) return Enumerable.Range(0, rows.Count).ToList();
        int buckets = Math.Max(1, maxPoints / 3);
        long first = rows[0].Step, span = Math.Max(1, rows[^1].Step - first + 1);
        var keep = new SortedSet<int>();
        int start = 0;
        for (int b = 0; b < buckets && start < rows.Count; b++)
        {
            long upper = first + span * (b + 1) / buckets;
            int end = start;
            while (end < rows.Count && (rows[end].Step < upper || b == buckets - 1)) end++;
            if (end == start) continue;
            int min = start, max = start;
            for (int i = start; i < end; i++)
            {
                if (rows[i].Loss < rows[min].Loss) min = i;
                if (rows[i].Loss > rows[max].Loss) max = i;
                if (rows[i].HasEval) keep.Add(i);
            }
            keep.Add(min); keep.Add(max); keep.Add(end - 1);
            start = end;
        }
        return [.. keep];
    }
}
