using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace MoTLab.WebApp.Data.Migrations
{
    /// <summary>Runs.Device held three things in turn (the device asked for, the slot given, the device the worker reported,
    /// as POOL:DEVICE for remote and Slurm runs); each now has its column: RequestedDevice, Slot, ReportedDevice.</summary>
    public partial class DeviceRequestedSlotReported : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.RenameColumn(
                name: "Device",
                table: "Runs",
                newName: "RequestedDevice");

            migrationBuilder.AddColumn<string>(
                name: "ReportedDevice",
                table: "Runs",
                type: "TEXT",
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "Slot",
                table: "Runs",
                type: "TEXT",
                nullable: true);

            // a run that started holds its slot or POOL:REPORTED; a queued one what it asked for
            migrationBuilder.Sql("""
                UPDATE Runs SET
                    ReportedDevice = CASE
                        WHEN RequestedDevice LIKE 'remote:%' THEN substr(RequestedDevice, 8)
                        WHEN RequestedDevice LIKE 'slurm:%' THEN substr(RequestedDevice, 7)
                        WHEN Status <> 'Queued' AND RequestedDevice NOT IN ('remote', 'slurm') THEN RequestedDevice
                        ELSE NULL END,
                    Slot = CASE WHEN Status <> 'Queued' AND (RequestedDevice = 'cpu' OR RequestedDevice LIKE 'cuda:%') THEN RequestedDevice ELSE NULL END;
                UPDATE Runs SET RequestedDevice = CASE
                    WHEN RequestedDevice LIKE 'remote%' THEN 'remote'
                    WHEN RequestedDevice LIKE 'slurm%' THEN 'slurm'
                    WHEN Status = 'Queued' THEN RequestedDevice
                    WHEN RequestedDevice LIKE 'cuda%' THEN 'cuda'
                    ELSE 'cpu' END;
                """);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.Sql("""
                UPDATE Runs SET RequestedDevice = CASE
                    WHEN RequestedDevice IN ('remote', 'slurm') AND ReportedDevice IS NOT NULL THEN RequestedDevice || ':' || ReportedDevice
                    WHEN Slot IS NOT NULL THEN Slot
                    ELSE RequestedDevice END;
                """);

            migrationBuilder.DropColumn(
                name: "ReportedDevice",
                table: "Runs");

            migrationBuilder.DropColumn(
                name: "Slot",
                table: "Runs");

            migrationBuilder.RenameColumn(
                name: "RequestedDevice",
                table: "Runs",
                newName: "Device");
        }
    }
}
