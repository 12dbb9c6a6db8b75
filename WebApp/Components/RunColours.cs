namespace MoTLab.WebApp.Components;

/// <summary>Okabe–Ito colours: distinguishable with the common colour-vision deficiencies; its black is a mid grey here,
/// which reads on the light and the dark background alike.</summary>
public static class RunColours
{
    static readonly string[] Colours = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#999999"];
    public static string Of(int i) => Colours[((i % Colours.Length) + Colours.Length) % Colours.Length];
}
