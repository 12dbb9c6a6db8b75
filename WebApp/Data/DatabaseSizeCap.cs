using System.Data.Common;
using Microsoft.EntityFrameworkCore.Diagnostics;

namespace MoTLab.WebApp.Data;

/// <summary>MoTLab:MaxDatabaseMB: sets SQLite's max_page_count on every connection, so writes past the cap fail
/// with SQLITE_FULL ("database or disk is full") exactly as on a full disk.</summary>
public sealed class DatabaseSizeCap(double megabytes) : DbConnectionInterceptor
{
    public override void ConnectionOpened(DbConnection connection, ConnectionEndEventData eventData) => Apply(connection);

    public override Task ConnectionOpenedAsync(DbConnection connection, ConnectionEndEventData eventData, CancellationToken ct = default)
    {
        Apply(connection);
        return Task.CompletedTask;
    }

    void Apply(DbConnection connection)
    {
        using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA page_size;";
        long pageSize = Convert.ToInt64(command.ExecuteScalar());
        command.CommandText = $"PRAGMA max_page_count = {Math.Max(1, (long)(megabytes * 1024 * 1024 / pageSize))};";
        command.ExecuteNonQuery();
    }
}
