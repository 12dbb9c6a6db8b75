using System.Data.Common;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
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

    const int CachedUpTo = 10_000, CacheEntries = 256;
    readonly System.Collections.Concurrent.ConcurrentDictionary<(int Run, int Max, long From, long To), (long Count, long Last, Task<List<MetricRow>> Rows)> cache = new();

    /// <summary>The rows to draw; the list is shared with other readers and must not be changed.</summary>
    public async Task<List<MetricRow>> ReadAsync(int runId, int maxPoints = 2000, long? fromStep = null, long? toStep = null, CancellationToken ct = default)
    {
        if (maxPoints > CachedUpTo) return await ReadStoredAsync(runId, maxPoints, fromStep, toStep, ct);
        var key = (runId, maxPoints, fromStep ?? long.MinValue, toStep ?? long.MaxValue);
        var (count, last) = await VersionAsync(runId, ct);
        if (cache.TryGetValue(key, out var hit) && hit.Count == count && hit.Last == last && !hit.Rows.IsFaulted && !hit.Rows.IsCanceled)
            return await hit.Rows.WaitAsync(ct);
        if (cache.Count >= CacheEntries) cache.Clear();
        var read = ReadStoredAsync(runId, maxPoints, fromStep, toStep, CancellationToken.None);   // shared: no one reader's cancel ends it
        cache[key] = (count, last, read);
        return await read.WaitAsync(ct);
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
    public async IAsyncEnumerable<MetricRow> StreamAsync(int runId, int maxPoints = 2000, long? fromStep = null, long? toStep = null,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct = default)
    {
        if (maxPoints <= CachedUpTo)
        {
            foreach (var row in await ReadAsync(runId, maxPoints, fromStep, toStep, ct)) yield return row;
            yield break;
        }
        await foreach (var row in ReadStoredRowsAsync(runId, maxPoints, fromStep, toStep, ct)) yield return row;
    }

    async Task<List<MetricRow>> ReadStoredAsync(int runId, int maxPoints, long? fromStep, long? toStep, CancellationToken ct)
    {
        var rows = new List<MetricRow>();
        await foreach (var row in ReadStoredRowsAsync(runId, maxPoints, fromStep, toStep, ct)) rows.Add(row);
        return rows;
    }

    async IAsyncEnumerable<MetricRow> ReadStoredRowsAsync(int runId, int maxPoints, long? fromStep, long? toStep,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        var connection = db.Database.GetDbConnection();
        await connection.OpenAsync(ct);
        long from = fromStep ?? long.MinValue, to = toStep ?? long.MaxValue;

        var keys = new List<Key>();
        await using (var scan = Command(connection, "SELECT Step, TrainLoss, EvalLoss IS NOT NULL FROM Metrics WHERE RunId = $run AND Step BETWEEN $from AND $to ORDER BY Step",
                         ("$run", runId), ("$from", from), ("$to", to)))
        await using (var r = await scan.ExecuteReaderAsync(ct))
            while (await r.ReadAsync(ct)) keys.Add(new Key(r.GetInt64(0), r.IsDBNull(1) ? double.NaN : r.GetDouble(1), r.GetBoolean(2)));

        var keep = Downsample(keys, maxPoints);
        var steps = JsonSerializer.Serialize(keep.Select(i => keys[i].Step));
        await using var cmd = Command(connection, """
            SELECT Step, Tokens, ElapsedS, Time, TrainLoss, EvalLoss, Lr, GradNorm, TokensPerS, Mfu, AuxLoss, BalanceLoss, ZLoss,
                   DroppedRatio, RouterEntropy, EvalExtraJson, NotANumber
            FROM Metrics WHERE RunId = $run AND Step IN (SELECT value FROM json_each($steps)) ORDER BY Step
            """, ("$run", runId), ("$steps", steps));
        await using var row = await cmd.ExecuteReaderAsync(ct);
        double? D(int i) => row.IsDBNull(i) ? null : row.GetDouble(i);
        string? S(int i) => row.IsDBNull(i) ? null : row.GetString(i);
        while (await row.ReadAsync(ct))
            yield return new MetricRow
            {
                RunId = runId, Step = row.GetInt64(0), Tokens = row.GetInt64(1), ElapsedS = D(2), Time = D(3), TrainLoss = D(4), EvalLoss = D(5),
                Lr = D(6), GradNorm = D(7), TokensPerS = D(8), Mfu = D(9), AuxLoss = D(10), BalanceLoss = D(11), ZLoss = D(12),
                DroppedRatio = D(13), RouterEntropy = D(14), EvalExtraJson = S(15), NotANumber = S(16),
            };
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
