using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace MoTLab.WebApp.Data.Migrations
{
    /// <inheritdoc />
    public partial class MetricsSystemSamples : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<double>(
                name: "CpuPercent",
                table: "Metrics",
                type: "REAL",
                nullable: true);

            migrationBuilder.AddColumn<double>(
                name: "GpuMemoryMb",
                table: "Metrics",
                type: "REAL",
                nullable: true);

            migrationBuilder.AddColumn<double>(
                name: "GpuUtilPercent",
                table: "Metrics",
                type: "REAL",
                nullable: true);

            migrationBuilder.AddColumn<double>(
                name: "RssMb",
                table: "Metrics",
                type: "REAL",
                nullable: true);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropColumn(
                name: "CpuPercent",
                table: "Metrics");

            migrationBuilder.DropColumn(
                name: "GpuMemoryMb",
                table: "Metrics");

            migrationBuilder.DropColumn(
                name: "GpuUtilPercent",
                table: "Metrics");

            migrationBuilder.DropColumn(
                name: "RssMb",
                table: "Metrics");
        }
    }
}
