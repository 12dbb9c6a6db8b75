using MoTLab.Shared.Config;
using System.Text.Json;
using Bunit;
using Microsoft.AspNetCore.Components;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using MoTLab.Shared;
using MoTLab.Shared.Telemetry;
using MoTLab.WebApp.Components;
using MoTLab.WebApp.Components.Pages;
using MoTLab.WebApp.Data;
using MoTLab.WebApp.Runs;
using MudBlazor;
using MudBlazor.Services;

namespace MoTLab.WebApp.Tests;

/// <summary>bUnit: components rendered with the real services over a temporary SQLite file.</summary>
public sealed class ComponentTests : BunitContext, IAsyncLifetime
{
    readonly string folder = Directory.CreateTempSubdirectory("motlab-bunit").FullName;

    public ComponentTests()
    {
        JSInterop.Mode = JSRuntimeMode.Loose;
        var options = Options.Create(new MoTLabOptions { DataFolder = folder });
        Services.AddLogging().AddSignalR();
        Services.AddMudServices();
        Services.AddSingleton(options);
        Services.AddDbContextFactory<MoTLabDb>(o => o.UseSqlite($"Data Source={options.Value.DatabasePath}"));
        Services.AddRunServices().AddSingleton<IWorkerControl, NoWorkers>();             // the dashboard's own registrations
        using var db = Services.GetRequiredService<IDbContextFactory<MoTLabDb>>().CreateDbContext();
        db.Database.Migrate();
    }

    IRenderedComponent<IComponent> RenderWithProviders(RenderFragment body) =>
        Render(b => { b.OpenComponent<MudPopoverProvider>(0); b.CloseComponent(); b.AddContent(1, body); });

    [Fact]
    public void New_run_form_flags_a_batch_that_is_not_a_multiple_of_the_group_and_blocks_launch()
    {
        var cut = RenderWithProviders(b => { b.OpenComponent<NewRun>(0); b.CloseComponent(); });
        Assert.Contains("218,240 parameters", cut.Find("#estimate").TextContent);       // tiny-mot, the default preset
        Assert.False(cut.Find("#launch-button").HasAttribute("disabled"));

        var batch = cut.FindComponents<MudNumericField<int>>().Single(f => f.Instance.Label == "Batch size");
        batch.Find("input").Change("6");

        cut.WaitForAssertion(() => Assert.Contains("must be a multiple of the MoT group size (4)", cut.Markup));
        Assert.True(cut.Find("#launch-button").HasAttribute("disabled"));
        Assert.Contains("fix the fields marked in red", cut.Find("#estimate").TextContent);

        batch.Find("input").Change("8");
        cut.WaitForAssertion(() => Assert.DoesNotContain("multiple of the MoT group size", cut.Markup));
        Assert.False(cut.Find("#launch-button").HasAttribute("disabled"));
    }

    [Fact]
    public async Task The_runs_page_renders_names_and_tags_as_text_not_markup()
    {
        await using (var db = await Services.GetRequiredService<IDbContextFactory<MoTLabDb>>().CreateDbContextAsync())
        {
            db.Runs.Add(new RunRow { Name = "<img src=x onerror=alert(1)><script>alert(2)</script>", Tags = "<b>x</b>", Kind = FfnKind.Dense, ConfigJson = "{}", RunDir = folder, CreatedAt = DateTime.UtcNow });
            await db.SaveChangesAsync();
        }
        var cut = RenderWithProviders(b => { b.OpenComponent<MoTLab.WebApp.Components.Pages.Runs>(0); b.CloseComponent(); });
        cut.WaitForAssertion(() => Assert.Contains("&lt;script&gt;alert(2)&lt;/script&gt;", cut.Markup));
        Assert.DoesNotContain("<script>alert", cut.Markup);
        Assert.DoesNotContain("<img src=x", cut.Markup);
        Assert.Contains("&lt;b&gt;x&lt;/b&gt;", cut.Markup);
    }

    [Fact]
    public async Task Routing_panel_draws_the_snapshot_merge_weights_as_a_heatmap()
    {
        float[][] weights = Enumerable.Range(0, 4).Select(t => Enumerable.Range(0, 8).Select(e => (t * 8 + e) / 100f).ToArray()).ToArray();
        var snapshot = new RoutingSnapshot { Step = 25, Layer = 1, Kind = FfnKind.MoT, Experts = 8, Entropy = 0.9, MergeWeights = weights, Temperature = 1, ExpertLoad = weights[0] };
        var run = new RunRow { Name = "t", Kind = FfnKind.MoT, ConfigJson = "{}", RunDir = folder, CreatedAt = DateTime.UtcNow };
        await using (var db = await Services.GetRequiredService<IDbContextFactory<MoTLabDb>>().CreateDbContextAsync())
        {
            db.Runs.Add(run);
            await db.SaveChangesAsync();
            db.Routing.Add(new RoutingRow { RunId = run.Id, Layer = 1, Step = 25, Json = JsonSerializer.Serialize(snapshot, Json.Options) });
            await db.SaveChangesAsync();
        }

        var cut = RenderWithProviders(b => { b.OpenComponent<RoutingPanel>(0); b.AddAttribute(1, nameof(RoutingPanel.Run), run); b.CloseComponent(); });

        cut.WaitForAssertion(() => Assert.Contains("entropy 0.900", cut.Markup));
        cut.WaitForAssertion(() =>
        {
            // the last call that drew the mixing heatmap: its trace is the snapshot's 4 × 8 weights, its title names the step
            var call = JSInterop.Invocations.Last(i => i.Arguments.Count > 1 && TrySerialize(i.Arguments[0]) == "\"mixing-heatmap-1\"" && TrySerialize(i.Arguments[1]).Contains("heatmap"));
            var z = JsonDocument.Parse(TrySerialize(call.Arguments[1])).RootElement[0].GetProperty("z");
            Assert.Equal(4, z.GetArrayLength());
            Assert.Equal(8, z[0].GetArrayLength());
            Assert.Equal(0.31, z[3][7].GetDouble(), 5);                    // (3·8 + 7) / 100
            Assert.Contains(call.Arguments.Skip(2), a => TrySerialize(a).Contains("MoT mixing weights, block 2, step 25"));
        });
    }

    /// <summary>No worker processes in component tests: there is nothing to kill.</summary>
    sealed class NoWorkers : IWorkerControl { public Task KillAsync(int runId) => Task.CompletedTask; }

    static string TrySerialize(object? argument)
    {
        try { return JsonSerializer.Serialize(argument); }
        catch (NotSupportedException) { return ""; }   // component references and render fragments
    }

    Task IAsyncLifetime.InitializeAsync() => Task.CompletedTask;
    Task IAsyncLifetime.DisposeAsync() => DisposeAsync().AsTask();   // MudBlazor's services only dispose asynchronously

    protected override async ValueTask DisposeAsyncCore()
    {
        await base.DisposeAsyncCore();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        try { Directory.Delete(folder, true); } catch (IOException) { }
    }
}
