// Matches values against CloudFormation AllowedPattern expressions as
// CloudFormation does: java.util.regex, the whole value (Pattern.matches).
// Used by pkg/config's TestParametersAgreeWithTheCode (run with
// `java tools/cfn/AllowedPattern.java`, Java 11+ single-file launch).
//
// Input, one pair a line: base64(pattern) SPACE base64(UTF-8 value).
// Output, one line each: 1 (matches), 0 (does not), or E <message> (the
// pattern does not compile).
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

public class AllowedPattern {
    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        Base64.Decoder dec = Base64.getDecoder();
        StringBuilder out = new StringBuilder();
        for (String line; (line = in.readLine()) != null; ) {
            if (line.isEmpty()) continue;
            String[] f = line.split(" ", -1);
            String pattern = new String(dec.decode(f[0]), StandardCharsets.UTF_8);
            String value = new String(dec.decode(f[1]), StandardCharsets.UTF_8);
            try {
                out.append(Pattern.matches(pattern, value) ? "1" : "0");
            } catch (PatternSyntaxException e) {
                out.append("E ").append(e.getDescription());
            }
            out.append('\n');
        }
        System.out.print(out);
    }
}
