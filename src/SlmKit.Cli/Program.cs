namespace SlmKit.Cli;

public static class Program
{
    public static int Main(string[] args)
    {
        Console.Error.WriteLine("slm: no commands yet");
        return 2;
    }
}
