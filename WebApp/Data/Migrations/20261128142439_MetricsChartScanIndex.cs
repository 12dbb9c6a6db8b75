using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace MoTLab.WebApp.Data.Migrations
{
    /// <inheritdoc />
    public partial class MetricsChartScanIndex : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateIndex(
                name: "IX_Metrics_ChartScan",
                table: "Metrics",
                columns: new[] { "RunId", "Step", "TrainLoss", "EvalLoss" });
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_Metrics_ChartScan",
                table: "Metrics");
        }
    }
}
