using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace MoTLab.WebApp.Data.Migrations
{
    /// <summary>Runs.Kind was the enum's C# name ("TokenChoice"); it is now the kind's one spelling, its config name
    /// ("token_choice"), as in the config, the API and routing.jsonl.</summary>
    public partial class KindSpelledAsInTheConfig : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.Sql("""
                UPDATE Runs SET Kind = CASE Kind WHEN 'Dense' THEN 'dense' WHEN 'MoT' THEN 'mot' WHEN 'TokenChoice' THEN 'token_choice'
                    WHEN 'ExpertChoice' THEN 'expert_choice' WHEN 'MoV' THEN 'mov' WHEN 'MoLoRA' THEN 'molora' ELSE Kind END;
                """);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.Sql("""
                UPDATE Runs SET Kind = CASE Kind WHEN 'dense' THEN 'Dense' WHEN 'mot' THEN 'MoT' WHEN 'token_choice' THEN 'TokenChoice'
                    WHEN 'expert_choice' THEN 'ExpertChoice' WHEN 'mov' THEN 'MoV' WHEN 'molora' THEN 'MoLoRA' ELSE Kind END;
                """);
        }
    }
}
