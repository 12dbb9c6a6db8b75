using System.CommandLine;
using System.Text.Json;
using MoTLab.Shared;
using MoTLab.Shared.Config;
using MoTLab.Shared.Runs;
using MoTLab.Training.Runtime;
using MoTLab.Training.Train;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Extensions.DependencyInjection;

namespace MoTLab.Training.Cli;

/// <summary>`worker`: trains one dashboard run. Connects to the dashboard's hub, fetches the run's config
/// with its per-run token, trains on a dedicated thread and streams telemetry back; a cancel from the hub
/// stops it after the current step with a checkpoint. The run folder gets the same files as `train`.</summary>
public static class WorkerCommand
{
    public static Command Create()
    {
        var run = new Option<int>("--run") { Description = "Run id on the dashboard", Required = true };
        var hub = new Option<string>("--hub") { Description = "Hub URL, e.g. http://127.0.0.1:5080/hubs/runs", Required = true };
        var token = new Option<string>("--token") { Description = "The run's worker token (or MOTLAB_WORKER_TOKEN)" };
        var output = new Option<string>("--out") { Description = "Run folder", Required = true };
        var device = new Option<string>("--device") { DefaultValueFactory = _ => "cpu" };
        var threads = new Option<int?>("--threads") { Description = "CPU threads for libtorch" };
        var grace = new Option<int>("--reconnect-grace") { Description = "Seconds to keep training without the dashboard before checkpointing and exiting", DefaultValueFactory = _ => 300 };
        var command = new Command("worker", "Train one dashboard run, streaming to its hub") { run, hub, token, output, device, threads, grace };
        command.SetAction(async (parse, ct) =>
        {
            var t = parse.GetValue(token) ?? Environment.GetEnvironmentVariable("MOTLAB_WORKER_TOKEN")
                ?? throw new UsageException("give --token or set MOTLAB_WORKER_TOKEN");
            TorchRuntime.SetThreads(parse.GetValue(threads));
            return await RunAsync(parse.GetValue(run), parse.GetValue(hub)!, t, parse.GetValue(output)!, parse.GetValue(device)!,
                TimeSpan.FromSeconds(parse.GetValue(grace)), ct);
        });
        return command;
    }

    static async Task<int> RunAsync(int runId, string hubUrl, string token, string runDir, string device, TimeSpan grace, CancellationToken ct)
    {
        // the per-run token also opens the connection on a dashboard that requires an access token; if the
        // dashboard goes away, training goes on (telemetry queues up) while the connection retries for `grace`
        await using var connection = Connection(hubUrl, token, grace);
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(ct);
        bool lost = false;
        connection.On<int>(nameof(IRunsClient.Cancel), id => { if (id == runId) cancel.Cancel(); });
        connection.Reconnected += async _ => await connection.InvokeAsync<WorkerAssignment>(RunsHubContract.Hello, runId, token);  // rejoin (a restarted dashboard adopts the run)
        connection.Closed += _ => { lost = true; cancel.Cancel(); return Task.CompletedTask; };                        // grace spent: checkpoint and stop
        await connection.StartAsync(ct);
        var assignment = await connection.InvokeAsync<WorkerAssignment>(RunsHubContract.Hello, runId, token, ct);
        var config = JsonSerializer.Deserialize<RunConfig>(assignment.ConfigJson, Json.Options)!;

        var console = new ConsoleSink(config.Train.Steps);
        await using var stream = new HubStream(connection, runId, token, reason =>
        {
            console.OnLog($"the dashboard refused {reason}");
            if (reason.Contains(RunsHubContract.TokenRefused)) cancel.Cancel();     // deleted or ended there: stop here too
        });
        Directory.CreateDirectory(runDir);
        string? resumeFrom = RunFolder.Checkpoints(runDir).Count > 0 ? runDir : null;
        long resumedStep = resumeFrom is null ? -1 : RunFolder.ReadState(RunFolder.Checkpoint(runDir)).Step;
        WorkerStatus final;
        try
        {
            // Training owns one thread for its whole life: dispose scopes and no_grad are per thread.
            final = await RunOnDedicatedThread(() =>
            {
                using var files = new JsonlSink(runDir, resumedStep);
                using var trainer = new Trainer(config, runDir, device, [files, console, stream], resumeFrom, dataRoots: assignment.DataRoots);
                stream.Status(new WorkerStatus(RunStatus.Running, Parameters: trainer.Model.ParameterCount(), Device: trainer.Device.ToString(), Step: trainer.State.Step));
                var state = trainer.Run(cancel.Token);
                return new WorkerStatus(state.Step >= config.Train.Steps ? RunStatus.Completed : RunStatus.Cancelled, Step: state.Step);
            });
        }
        catch (Exception e)
        {
            final = new WorkerStatus(RunStatus.Failed, Error: FailureReason.Describe(e, config));
            console.OnLog($"error: {final.Error}");
        }
        if (lost)
        {
            console.OnLog($"lost the dashboard for {grace.TotalSeconds:N0} s; stopped at step {final.Step} with a checkpoint (Resume continues from it)");
            return 3;
        }
        stream.Status(final);
        await stream.FlushAsync();
        return final.Status == RunStatus.Failed ? 1 : 0;
    }

    /// <summary>The worker's hub connection: its per-run token opens it, it reconnects every second for
    /// <paramref name="grace"/>, and its JSON carries NaN and ±Infinity as "NaN" / "Infinity" (a diverging run with
    /// train.stop_on_non_finite: false logs them, and strict JSON would refuse every batch holding one).</summary>
    public static HubConnection Connection(string hubUrl, string token, TimeSpan grace) => new HubConnectionBuilder()
        .WithUrl(hubUrl, o => o.AccessTokenProvider = () => Task.FromResult<string?>(token))
        .WithAutomaticReconnect(new RetryFor(grace))
        .AddJsonProtocol(o => RunsHubContract.Payload(o.PayloadSerializerOptions))
        .Build();

    /// <summary>Reconnect every second until <paramref name="grace"/> has passed.</summary>
    sealed class RetryFor(TimeSpan grace) : IRetryPolicy
    {
        public TimeSpan? NextRetryDelay(RetryContext context) => context.ElapsedTime < grace ? TimeSpan.FromSeconds(1) : null;
    }

    static Task<T> RunOnDedicatedThread<T>(Func<T> work)
    {
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            try { done.SetResult(work()); }
            catch (Exception e) { done.SetException(e); }
        }, maxStackSize: 16 * 1024 * 1024) { IsBackground = true, Name = "motlab-train" };
        thread.Start();
        return done.Task;
    }
}
