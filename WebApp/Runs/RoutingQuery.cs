using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using MoTLab.Shared;
using MoTLab.Shared.Telemetry;
using MoTLab.WebApp.Data;

namespace MoTLab.WebApp.Runs;

/// <summary>Reads a run's routing snapshots (one per sparse layer every snapshot_every steps), beside
/// <see cref="MetricsQuery"/> for its steps.</summary>
public sealed class RoutingQuery(IDbContextFactory<MoTLabDb> dbs)
{
    /// <summary>Every snapshot of the run, in step order (the Routing tab's history).</summary>
    public async Task<List<RoutingSnapshot>> AllAsync(int runId, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        var rows = await db.Routing.AsNoTracking().Where(r => r.RunId == runId).OrderBy(r => r.Step).ThenBy(r => r.Layer).ToListAsync(ct);
        return rows.Select(Read).ToList();
    }

    /// <summary>The snapshots of the latest snapshot step at or before <paramref name="step"/> (any when null), of one
    /// layer or all, by layer; empty when there is none.</summary>
    public async Task<List<RoutingSnapshot>> LatestAsync(int runId, long? step = null, int? layer = null, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        var q = db.Routing.AsNoTracking().Where(r => r.RunId == runId);
        if (layer is { } l) q = q.Where(r => r.Layer == l);
        if (step is { } s) q = q.Where(r => r.Step <= s);
        var latest = await q.MaxAsync(r => (long?)r.Step, ct);
        if (latest is null) return [];
        return (await q.Where(r => r.Step == latest).OrderBy(r => r.Layer).ToListAsync(ct)).Select(Read).ToList();
    }

    static RoutingSnapshot Read(RoutingRow row) => JsonSerializer.Deserialize<RoutingSnapshot>(row.Json, Json.Options)!;
}
