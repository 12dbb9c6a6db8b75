using Microsoft.EntityFrameworkCore;
using MoTLab.WebApp.Data;

namespace MoTLab.WebApp.Runs;

/// <summary>Reads a run's metric history for charts: at most ~maxPoints rows, chosen per x-bucket so each
/// bucket keeps its lowest-loss, highest-loss and last row (spikes and the trend survive), plus every row
/// with an eval loss. A step range re-reads a zoomed window at full resolution.</summary>
public sealed class MetricsQuery(IDbContextFactory<MoTLabDb> dbs)
{
    public async Task<List<MetricRow>> ReadAsync(int runId, int maxPoints = 2000, long? fromStep = null, long? toStep = null, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        var q = db.Metrics.AsNoTracking().Where(m => m.RunId == runId);
        if (fromStep is { } f) q = q.Where(m => m.Step >= f);
        if (toStep is { } t) q = q.Where(m => m.Step <= t);
        var rows = await q.OrderBy(m => m.Step).ToListAsync(ct);
        return Downsample(rows, maxPoints);
    }

    public static List<MetricRow> Downsample(List<MetricRow> rows, int maxPoints)
    {
        if (rows.Count <= maxPoints || maxPoints < 3) return rows;
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
                if (rows[i].TrainLoss < rows[min].TrainLoss) min = i;
                if (rows[i].TrainLoss > rows[max].TrainLoss) max = i;
                if (rows[i].EvalLoss is not null) keep.Add(i);
            }
            keep.Add(min); keep.Add(max); keep.Add(end - 1);
            start = end;
        }
        return keep.Select(i => rows[i]).ToList();
    }
}
