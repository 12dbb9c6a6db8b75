using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace MoTLab.WebApp.Data.Migrations
{
    /// <inheritdoc />
    public partial class InitialCreate : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateTable(
                name: "Runs",
                columns: table => new
                {
                    Id = table.Column<int>(type: "INTEGER", nullable: false)
                        .Annotation("Sqlite:Autoincrement", true),
                    Name = table.Column<string>(type: "TEXT", nullable: false),
                    Status = table.Column<string>(type: "TEXT", nullable: false),
                    ConfigJson = table.Column<string>(type: "TEXT", nullable: false),
                    Preset = table.Column<string>(type: "TEXT", nullable: true),
                    Kind = table.Column<string>(type: "TEXT", nullable: false),
                    Tags = table.Column<string>(type: "TEXT", nullable: false),
                    Notes = table.Column<string>(type: "TEXT", nullable: false),
                    Device = table.Column<string>(type: "TEXT", nullable: false),
                    CreatedAt = table.Column<DateTime>(type: "TEXT", nullable: false),
                    StartedAt = table.Column<DateTime>(type: "TEXT", nullable: true),
                    EndedAt = table.Column<DateTime>(type: "TEXT", nullable: true),
                    Error = table.Column<string>(type: "TEXT", nullable: true),
                    Parameters = table.Column<long>(type: "INTEGER", nullable: true),
                    FlopsPerToken = table.Column<double>(type: "REAL", nullable: false),
                    TotalSteps = table.Column<long>(type: "INTEGER", nullable: false),
                    LastStep = table.Column<long>(type: "INTEGER", nullable: false),
                    LastLoss = table.Column<double>(type: "REAL", nullable: true),
                    BestLoss = table.Column<double>(type: "REAL", nullable: true),
                    LastEvalLoss = table.Column<double>(type: "REAL", nullable: true),
                    BestEvalLoss = table.Column<double>(type: "REAL", nullable: true),
                    TokensPerS = table.Column<double>(type: "REAL", nullable: true),
                    ElapsedS = table.Column<double>(type: "REAL", nullable: true),
                    ParentId = table.Column<int>(type: "INTEGER", nullable: true),
                    WorkerTokenHash = table.Column<string>(type: "TEXT", nullable: true),
                    WorkerPid = table.Column<int>(type: "INTEGER", nullable: true),
                    RunDir = table.Column<string>(type: "TEXT", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_Runs", x => x.Id);
                });

            migrationBuilder.CreateTable(
                name: "Checkpoints",
                columns: table => new
                {
                    RunId = table.Column<int>(type: "INTEGER", nullable: false),
                    Step = table.Column<long>(type: "INTEGER", nullable: false),
                    Path = table.Column<string>(type: "TEXT", nullable: false),
                    CreatedAt = table.Column<DateTime>(type: "TEXT", nullable: false),
                    TrainLoss = table.Column<double>(type: "REAL", nullable: true),
                    EvalLoss = table.Column<double>(type: "REAL", nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_Checkpoints", x => new { x.RunId, x.Step });
                    table.ForeignKey(
                        name: "FK_Checkpoints_Runs_RunId",
                        column: x => x.RunId,
                        principalTable: "Runs",
                        principalColumn: "Id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateTable(
                name: "Metrics",
                columns: table => new
                {
                    RunId = table.Column<int>(type: "INTEGER", nullable: false),
                    Step = table.Column<long>(type: "INTEGER", nullable: false),
                    Tokens = table.Column<long>(type: "INTEGER", nullable: false),
                    ElapsedS = table.Column<double>(type: "REAL", nullable: false),
                    TrainLoss = table.Column<double>(type: "REAL", nullable: false),
                    EvalLoss = table.Column<double>(type: "REAL", nullable: true),
                    Lr = table.Column<double>(type: "REAL", nullable: false),
                    GradNorm = table.Column<double>(type: "REAL", nullable: false),
                    TokensPerS = table.Column<double>(type: "REAL", nullable: false),
                    Mfu = table.Column<double>(type: "REAL", nullable: false),
                    AuxLoss = table.Column<double>(type: "REAL", nullable: false),
                    DroppedRatio = table.Column<double>(type: "REAL", nullable: true),
                    RouterEntropy = table.Column<double>(type: "REAL", nullable: true),
                    EvalExtraJson = table.Column<string>(type: "TEXT", nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_Metrics", x => new { x.RunId, x.Step });
                    table.ForeignKey(
                        name: "FK_Metrics_Runs_RunId",
                        column: x => x.RunId,
                        principalTable: "Runs",
                        principalColumn: "Id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateTable(
                name: "Routing",
                columns: table => new
                {
                    RunId = table.Column<int>(type: "INTEGER", nullable: false),
                    Layer = table.Column<int>(type: "INTEGER", nullable: false),
                    Step = table.Column<long>(type: "INTEGER", nullable: false),
                    Json = table.Column<string>(type: "TEXT", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_Routing", x => new { x.RunId, x.Layer, x.Step });
                    table.ForeignKey(
                        name: "FK_Routing_Runs_RunId",
                        column: x => x.RunId,
                        principalTable: "Runs",
                        principalColumn: "Id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateIndex(
                name: "IX_Metrics_ChartScan",
                table: "Metrics",
                columns: new[] { "RunId", "Step", "TrainLoss", "EvalLoss" });

            migrationBuilder.CreateIndex(
                name: "IX_Runs_CreatedAt",
                table: "Runs",
                column: "CreatedAt");

            migrationBuilder.CreateIndex(
                name: "IX_Runs_Status",
                table: "Runs",
                column: "Status");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "Checkpoints");

            migrationBuilder.DropTable(
                name: "Metrics");

            migrationBuilder.DropTable(
                name: "Routing");

            migrationBuilder.DropTable(
                name: "Runs");
        }
    }
}
