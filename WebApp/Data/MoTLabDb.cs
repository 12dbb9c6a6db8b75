using Microsoft.EntityFrameworkCore;
using MoTLab.Shared.Config;
using MoTLab.Shared.Runs;
using MoTLab.Shared.Telemetry;

namespace MoTLab.WebApp.Data;

public sealed class MoTLabDb(DbContextOptions<MoTLabDb> options) : DbContext(options)
{
    public DbSet<RunRow> Runs => Set<RunRow>();
    public DbSet<MetricRow> Metrics => Set<MetricRow>();
    public DbSet<RoutingRow> Routing => Set<RoutingRow>();
    public DbSet<CheckpointRow> Checkpoints => Set<CheckpointRow>();
    public DbSet<SweepRow> Sweeps => Set<SweepRow>();

    protected override void OnModelCreating(ModelBuilder b)
    {
        b.Entity<RunRow>(e =>
        {
            e.Property(r => r.Status).HasConversion<string>();
            e.Property(r => r.Kind).HasConversion(k => FfnKinds.Of(k).Name, name => FfnKinds.Parse(name)!.Kind);   // "mot", as in the config
            e.Property(r => r.Requested).HasColumnName("RequestedDevice").HasConversion(d => d.ToString(), text => DeviceRequest.Parse(text)!.Value);
            e.Property(r => r.Reported).HasColumnName("ReportedDevice");
            e.Ignore(r => r.Device);
            e.HasIndex(r => r.Status);
            e.HasIndex(r => r.CreatedAt);
            e.HasOne<SweepRow>().WithMany().HasForeignKey(r => r.SweepId).OnDelete(DeleteBehavior.SetNull);
        });
        b.Entity<MetricRow>(e =>
        {
            e.HasKey(m => new { m.RunId, m.Step });
            MetricColumns.Map(e);
            // covers the chart's first pass (step, loss, has-eval), so long histories are scanned from the index alone
            e.HasIndex(nameof(MetricRow.RunId), nameof(MetricRow.Step), nameof(StepMetrics.TrainLoss), nameof(StepMetrics.EvalLoss)).HasDatabaseName("IX_Metrics_ChartScan");
            e.HasOne<RunRow>().WithMany().HasForeignKey(m => m.RunId).OnDelete(DeleteBehavior.Cascade);
        });
        b.Entity<CheckpointRow>(e =>
        {
            e.HasKey(c => new { c.RunId, c.Step });
            e.HasOne<RunRow>().WithMany().HasForeignKey(c => c.RunId).OnDelete(DeleteBehavior.Cascade);
        });
        b.Entity<RoutingRow>(e =>
        {
            e.HasKey(r => new { r.RunId, r.Layer, r.Step });
            e.HasOne<RunRow>().WithMany().HasForeignKey(r => r.RunId).OnDelete(DeleteBehavior.Cascade);
        });
    }
}
