package fr.pds.spark.linkage;

import org.apache.spark.sql.api.java.UDF2;

/** Edit distance counting an insertion, deletion, substitution or transposition of two
 *  adjacent characters as one (optimal string alignment: no substring edited twice); null when
 *  either is null. */
public final class DamerauLevenshtein implements UDF2<String, String, Integer> {
    private static final long serialVersionUID = 1L;

    @Override
    public Integer call(String a, String b) {
        if (a == null || b == null) {
            return null;
        }
        return distance(a, b);
    }

    public static int distance(String a, String b) {
        int n = a.length(), m = b.length();
        int[] before = new int[m + 1], previous = new int[m + 1], current = new int[m + 1];
        for (int j = 0; j <= m; j++) {
            previous[j] = j;
        }
        for (int i = 1; i <= n; i++) {
            current[0] = i;
            for (int j = 1; j <= m; j++) {
                int cost = a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1;
                int best = Math.min(Math.min(previous[j] + 1, current[j - 1] + 1), previous[j - 1] + cost);
                if (i > 1 && j > 1 && a.charAt(i - 1) == b.charAt(j - 2) && a.charAt(i - 2) == b.charAt(j - 1)) {
                    best = Math.min(best, before[j - 2] + 1);
                }
                current[j] = best;
            }
            int[] spare = before;
            before = previous;
            previous = current;
            current = spare;
        }
        return previous[m];
    }
}
