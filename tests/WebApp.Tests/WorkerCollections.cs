namespace MoTLab.WebApp.Tests;

/// <summary>The test classes that train real workers, in two xunit collections: a collection runs its classes one
/// after another, so at most two of them train at once. Eight side by side on 2 cores starved one another past their
/// waits (a run that is merely slow is not a failure, but a wait must end somewhere).</summary>
public static class Workers
{
    public const string A = "workers A", B = "workers B";
}

[CollectionDefinition(Workers.A)] public sealed class WorkersA;
[CollectionDefinition(Workers.B)] public sealed class WorkersB;
