using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;
using MoTLab.Shared.Config;
using MoTLab.Shared.Runs;
using MoTLab.WebApp.Data;

namespace MoTLab.WebApp.Tests;

/// <summary>A database written by an earlier MoTLab reads the same after the dashboard upgrades it.</summary>
public class MigrationTests
{
    [Fact]
    public void Runs_stored_with_the_kinds_csharp_names_and_one_device_column_read_the_same_after_the_upgrade()
    {
        var file = Path.Combine(Directory.CreateTempSubdirectory("motlab-migrate").FullName, "motlab.db");
        using var db = new MoTLabDb(new DbContextOptionsBuilder<MoTLabDb>().UseSqlite($"Data Source={file}").Options);
        db.GetService<IMigrator>().Migrate("20261201114329_MetricsSystemSamples");   // the schema before kinds were spelled as in the config
        var old = new[] { "Dense", "MoT", "TokenChoice", "ExpertChoice", "MoV", "MoLoRA" };
        // Device as it was: a queued run's request, a started run's slot, a pool run's POOL:REPORTED
        var devices = new[] { ("cuda:1", "Queued"), ("cuda:0", "Completed"), ("slurm:cuda:0", "Running"), ("remote", "Queued"), ("cpu", "Failed"), ("remote:cpu", "Completed") };
        using (var connection = new SqliteConnection($"Data Source={file}"))
        {
            connection.Open();
            foreach (var (kind, (device, status)) in old.Zip(devices))
            {
                using var insert = connection.CreateCommand();
                insert.CommandText = """
                    INSERT INTO Runs (Name, Status, ConfigJson, Kind, Tags, Notes, Device, CreatedAt, FlopsPerToken, TotalSteps, LastStep, RunDir)
                    VALUES ($name, $status, '{}', $kind, '', '', $device, '2026-11-30 12:00:00', 1, 10, 10, '/tmp')
                    """;
                insert.Parameters.AddWithValue("$name", kind);
                insert.Parameters.AddWithValue("$kind", kind);
                insert.Parameters.AddWithValue("$device", device);
                insert.Parameters.AddWithValue("$status", status);
                insert.ExecuteNonQuery();
            }
        }

        db.Database.Migrate();

        var read = db.Runs.AsNoTracking().OrderBy(r => r.Id).ToList();
        Assert.Equal(Enum.GetValues<FfnKind>(), read.Select(r => r.Kind));
        Assert.Equal(old, read.Select(r => r.Name));
        Assert.Equal(2, db.Runs.Count(r => r.Kind == FfnKind.MoT || r.Kind == FfnKind.MoLoRA));   // the kind filters in SQL
        Assert.Equal(["cuda:1", "cuda", "slurm", "remote", "cpu", "remote"], read.Select(r => r.Requested.ToString()));
        Assert.Equal([null, "cuda:0", null, null, "cpu", null], read.Select(r => r.Slot));
        Assert.Equal([null, "cuda:0", "cuda:0", null, "cpu", "cpu"], read.Select(r => r.Reported));
        Assert.Equal(devices.Select(d => d.Item1), read.Select(r => r.Device));                      // shown as before
        Assert.Equal(1, db.Runs.Count(r => r.Requested == DeviceRequest.Slurm));
    }
}
