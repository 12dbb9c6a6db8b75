using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace MoTLab.WebApp.Data.Migrations
{
    /// <inheritdoc />
    public partial class SweepFollowUp : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<string>(
                name: "ThenJson",
                table: "Sweeps",
                type: "TEXT",
                nullable: true);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropColumn(
                name: "ThenJson",
                table: "Sweeps");
        }
    }
}
