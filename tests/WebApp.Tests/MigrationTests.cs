using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;
using MoTLab.Shared.Config;
using MoTLab.WebApp.Data;

namespace MoTLab.WebApp.Tests;

/// <summary>A database written by an earlier MoTLab reads the same after the dashboard upgrades it.</summary>
public class MigrationTests
{
    [Fact]
    public void Runs_stored_with_the_kinds_csharp_names_read_as_their_kinds_after_the_upgrade()
    {
        var file = Path.Combine(Directory.CreateTempSubdirectory("motlab-migrate").FullName, "motlab.db");
        using var db = new MoTLabDb(new DbContextOptionsBuilder<MoTLabDb>().UseSqlite($"Data Source={file}").Options);
        db.GetService<IMigrator>().Migrate("20261201114329_MetricsSystemSamples");   // the schema before kinds were spelled as in the config
        var old = new[] { "Dense", "MoT", "TokenChoice", "ExpertChoice", "MoV", "MoLoRA" };
        using (var connection = new SqliteConnection($"Data Source={file}"))
        {
            connection.Open();
            foreach (var kind in old)
            {
                using var insert = connection.CreateCommand();
                insert.CommandText = """
                    INSERT INTO Runs (Name, Status, ConfigJson, Kind, Tags, Notes, Device, CreatedAt, FlopsPerToken, TotalSteps, LastStep, RunDir)
                    VALUES ($name, 'Completed', '{}', $kind, '', '', 'cpu', '2026-11-30 12:00:00', 1, 10, 10, '/tmp')
                    """;
                insert.Parameters.AddWithValue("$name", kind);
                insert.Parameters.AddWithValue("$kind", kind);
                insert.ExecuteNonQuery();
            }
        }

        db.Database.Migrate();

        var read = db.Runs.AsNoTracking().OrderBy(r => r.Id).ToList();
        Assert.Equal(Enum.GetValues<FfnKind>(), read.Select(r => r.Kind));
        Assert.Equal(old, read.Select(r => r.Name));
        Assert.Equal(2, db.Runs.Count(r => r.Kind == FfnKind.MoT || r.Kind == FfnKind.MoLoRA));   // the kind filters in SQL
    }
}
